"""Tasks: named pieces of code (Python callables or shell commands) with defaults."""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

from taskwheel.awaited import run_awaited
from taskwheel.breakers import CircuitBreaker
from taskwheel.durations import DurationLike, aware_datetime, format_duration, parse_duration
from taskwheel.errors import InvalidInput
from taskwheel.fairness import validate_fairness_key
from taskwheel.jobs import (
    MAX_ARGUMENT_BYTES,
    DeadlinePolicy,
    Guarantee,
    NewJob,
    dumps_json,
    stored_json,
)
from taskwheel.limits import DEFAULT_KEY, ConcurrencyLimit
from taskwheel.rates import RateLimit
from taskwheel.retry import DEFAULT_RETRY, NO_RETRY, Retry
from taskwheel.validators import (
    validate_choice,
    validate_max_attempts,
    validate_name,
    validate_priority,
)

if TYPE_CHECKING:
    from taskwheel.handles import JobHandle

P = ParamSpec("P")
R = TypeVar("R")



class Enqueue(Protocol):
    """What `Task.enqueue` hands its request to: `App.enqueue_many` (or a `Client`'s),
    which writes a batch of requests in one transaction -- the caller's, on
    ``connection``, when one is given -- and returns a handle on each job. A callable
    of the batch alone serves tasks never enqueued with ``using=``."""

    def __call__(
        self, requests: Iterable[NewJob], /, *, connection: Any = None
    ) -> list[JobHandle]: ...

ENQUEUE_OPTIONS = frozenset(
    {"queue", "priority", "delay", "at", "deadline", "timeout", "max_attempts", "idempotency_key",
     "fairness_key"}
)


class Pool(StrEnum):
    """Where a task's code runs inside a worker."""

    ASYNC = "async"  # coroutines on the event loop, sync code on threads
    THREAD = "thread"  # everything on threads
    PROCESS = "process"  # child processes, killed with their process group at the timeout


@dataclass(frozen=True)
class TaskOptions:
    """A task's defaults; each job may override queue, priority, timeout and attempts."""

    queue: str = "default"
    priority: int = 0
    timeout: float | None = None
    retry: Retry = field(default=DEFAULT_RETRY)
    guarantee: Guarantee = Guarantee.AT_LEAST_ONCE
    deadline_policy: DeadlinePolicy = DeadlinePolicy.EXPIRE
    pool: Pool | None = None  # None: the worker's pool
    pass_context: bool = False
    concurrency: ConcurrencyLimit | None = None
    breaker: CircuitBreaker | None = None
    fairness_key: str | None = None  # each job's, with {name} fields of its arguments
    rate: RateLimit | None = None


def make_options(
    *,
    queue: str = "default",
    priority: int = 0,
    timeout: DurationLike | None = None,
    retry: Retry | int | None = None,
    guarantee: Guarantee | str = Guarantee.AT_LEAST_ONCE,
    deadline_policy: DeadlinePolicy | str = DeadlinePolicy.EXPIRE,
    pool: Pool | str | None = None,
    pass_context: bool = False,
    concurrency: ConcurrencyLimit | None = None,
    breaker: CircuitBreaker | None = None,
    fairness_key: str | None = None,
    rate: RateLimit | None = None,
) -> TaskOptions:
    """Validate a task's options; every error names its field."""
    if isinstance(retry, int) and not isinstance(retry, bool):
        retry_policy = Retry(max_attempts=retry)
    elif retry is None:
        # A task that must never run twice is not retried unless the user asks for it.
        at_most_once = guarantee == Guarantee.AT_MOST_ONCE
        retry_policy = NO_RETRY if at_most_once else DEFAULT_RETRY
    elif isinstance(retry, Retry):
        retry_policy = retry
    else:
        raise InvalidInput("retry", f"expected taskwheel.Retry or an attempt count, got {retry!r}")
    return TaskOptions(
        queue=validate_name(queue, "queue"),
        priority=validate_priority(priority),
        timeout=None if timeout is None else parse_duration(timeout, "timeout", allow_zero=False),
        retry=retry_policy,
        guarantee=validate_choice(Guarantee, guarantee, "guarantee"),
        deadline_policy=validate_choice(DeadlinePolicy, deadline_policy, "deadline_policy"),
        pool=None if pool is None else validate_choice(Pool, pool, "pool"),
        pass_context=bool(pass_context),
        concurrency=_checked_concurrency(concurrency),
        breaker=_checked_breaker(breaker, concurrency),
        fairness_key=None if fairness_key is None else validate_fairness_key(fairness_key),
        rate=_checked_rate(rate),
    )


def _checked_rate(value: object) -> RateLimit | None:
    if value is not None and not isinstance(value, RateLimit):
        raise InvalidInput("rate", f"expected taskwheel.RateLimit, got {value!r}")
    return value


def _checked_breaker(value: object, concurrency: ConcurrencyLimit | None
                     ) -> CircuitBreaker | None:
    if value is None:
        return None
    if not isinstance(value, CircuitBreaker):
        raise InvalidInput("breaker", f"expected taskwheel.CircuitBreaker, got {value!r}")
    if concurrency is not None and value.key not in (DEFAULT_KEY, concurrency.key):
        raise InvalidInput("breaker.key", f"{value.key!r}: a task with a concurrency limit "
                           f"has one key, the limit's ({concurrency.key!r})")
    return value


def _checked_concurrency(value: object) -> ConcurrencyLimit | None:
    if value is not None and not isinstance(value, ConcurrencyLimit):
        raise InvalidInput("concurrency", f"expected taskwheel.ConcurrencyLimit, got {value!r}")
    return value


class Task(Generic[P, R]):
    """A registered task. Call it to run the code here; `enqueue` it to run it on a worker.

    A task knows the namespace its jobs belong to and where to send them (``enqueue``,
    a callable taking a batch of requests), not the app that registered it; `App.task`
    and `App.shell_task` build tasks, and `App.configure` moves them to another
    namespace.

    Args:
        name: how jobs refer to the task (validated by the caller).
        options: the task's defaults (`make_options`).
        namespace: the namespace of the jobs it prepares.
        enqueue: writes prepared requests, e.g. `App.enqueue_many`.
        fn: the Python callable; or
        command: the shell command with ``{0}``/``{name}`` fields.
        max_argument_bytes: the most bytes of JSON a job's ``args``, and its
            ``kwargs``, may take (`App`'s setting; 1 MB by default).

    Example:
        >>> app = App("sqlite://:memory:")
        >>> @app.task(queue="emails", priority=5)
        ... def send(to: str) -> str:
        ...     return f"sent to {to}"
        >>> job = send.enqueue("a@b.c", priority=9)
        >>> standalone = Task("send", make_options(queue="emails"), namespace="default",
        ...                   enqueue=app.client.enqueue_many, fn=send.fn)
    """

    def __init__(
        self,
        name: str,
        options: TaskOptions,
        *,
        namespace: str,
        enqueue: Enqueue,
        fn: Callable[P, R] | None = None,
        command: str | None = None,
        max_argument_bytes: int = MAX_ARGUMENT_BYTES,
    ) -> None:
        self.name = name
        self.max_argument_bytes = max_argument_bytes
        self.options = options
        self.namespace = namespace
        self._enqueue = enqueue
        self.fn = fn
        self.command = command
        self.is_async = fn is not None and inspect.iscoroutinefunction(fn)
        self._signature = _call_signature(fn, options.pass_context) if fn is not None else None
        # How many positional arguments the function takes when that number is all a
        # binding checks (no defaults, no *args or **kwargs, nothing keyword-only): a
        # call with exactly that many and no keywords needs no `Signature.bind`.
        self._plain_arity = _plain_arity(self._signature)
        if self._signature is not None:
            clash = (ENQUEUE_OPTIONS | {"using"}) & set(self._signature.parameters)
            if clash:
                raise InvalidInput(
                    "task",
                    f"{name!r} has parameters named like enqueue options "
                    f"({', '.join(sorted(clash))}); rename them",
                )

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.fn is None:
            raise TypeError(f"shell task {self.name!r} runs on a worker; enqueue it")
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.options.queue}>"

    def enqueue(self, *args: Any, using: Any = None, **kwargs: Any) -> JobHandle:
        """Create a job of this task. Keywords named like enqueue options
        (``queue, priority, delay, at, deadline, timeout, max_attempts, idempotency_key``)
        are options; the other arguments go to the task. ``using``: the application's
        own database connection, whose open transaction creates the job (see
        `App.enqueue`).

        Example:
            >>> with psycopg.connect(url) as conn:        # commits when the block ends
            ...     conn.execute("INSERT INTO signups (email) VALUES (%s)", ["a@b.c"])
            ...     send.enqueue("a@b.c", using=conn)
        """
        requests = [self.prepare(*args, **kwargs)]
        if using is None:  # any callable of a batch will do (see `Enqueue`)
            return self._enqueue(requests)[0]
        return self._enqueue(requests, connection=using)[0]

    async def enqueue_async(self, *args: Any, using: Any = None, **kwargs: Any) -> JobHandle:
        """`enqueue` from a coroutine, without blocking its event loop; ``using`` may
        then be the application's psycopg ``AsyncConnection`` (see `App.enqueue_async`).

        Example:
            >>> async with await psycopg.AsyncConnection.connect(url) as conn:  # doctest: +SKIP
            ...     await send.enqueue_async("a@b.c", using=conn)
        """
        requests = [self.prepare(*args, **kwargs)]

        def enqueue(connection: object | None) -> list[JobHandle]:
            if connection is None:
                return self._enqueue(requests)
            return self._enqueue(requests, connection=connection)

        return (await run_awaited(enqueue, using))[0]

    def prepare(self, *args: Any, **kwargs: Any) -> NewJob:
        """A validated job request for `App.enqueue_many`, written nowhere yet.

        Example:
            >>> app.enqueue_many(send.prepare(to) for to in ["a@b.c", "d@e.f"])
        """
        options = {key: kwargs.pop(key) for key in list(kwargs) if key in ENQUEUE_OPTIONS}
        return self.request(list(args), kwargs, **options)

    def request(
        self,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: DurationLike | None = None,
        at: datetime | None = None,
        deadline: datetime | DurationLike | None = None,
        timeout: DurationLike | None = None,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
        namespace: str | None = None,
        fairness_key: str | None = None,
    ) -> NewJob:
        """The job request with arguments given as a list and a dict, for the task's
        namespace or ``namespace`` (an HTTP server serves every namespace with one
        registry)."""
        if args is None:
            args = []
        if kwargs is None:
            kwargs = {}
        if not isinstance(args, list | tuple):
            raise InvalidInput("args", f"must be a list, got {type(args).__name__}")
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise InvalidInput("kwargs", "must be an object with string keys")
        args = list(args)
        self.check_arguments(args, kwargs)
        if delay is not None and at is not None:
            raise InvalidInput("at", "give either delay or at, not both")
        run_at = None
        if at is not None:
            run_at = aware_datetime(at, "at").timestamp()
        deadline_at: float | None = None
        deadline_in: float | None = None
        if isinstance(deadline, datetime):
            deadline_at = aware_datetime(deadline, "deadline").timestamp()
        elif deadline is not None:
            # A job must start before its deadline: none can start within no time.
            deadline_in = parse_duration(deadline, "deadline", allow_zero=False)
        delay_seconds = parse_duration(delay, "delay") if delay is not None else 0.0
        if self.options.deadline_policy is DeadlinePolicy.EXPIRE:
            _check_deadline_after_start(deadline_at, deadline_in, run_at, delay_seconds)
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 500
        ):
            raise InvalidInput("idempotency_key", "must be a string of 1-500 characters")
        if idempotency_key is not None:
            dumps_json(idempotency_key, "idempotency_key")  # valid Unicode, or refused
        job_queue = validate_name(queue, "queue") if queue is not None else self.options.queue
        gate_key = self.key_of(job_queue, args, kwargs)
        rate_key = self.rate_key_of(job_queue, args, kwargs)
        if fairness_key is not None:
            validate_fairness_key(fairness_key)
        elif self.options.fairness_key is not None:
            named = dict(kwargs)
            if self._signature is not None:  # arguments given by position have names too
                named = {**self._signature.bind(*args, **kwargs).arguments, **kwargs}
            fairness_key = _filled_key(self.options.fairness_key, args, named, self.name)
        stored_args, args_json = stored_json(args, "args", max_bytes=self.max_argument_bytes)
        stored_kwargs, kwargs_json = stored_json(kwargs, "kwargs",
                                                 max_bytes=self.max_argument_bytes)
        # Positional, in the order of `NewJob`'s fields (tests/unit/test_rows.py checks
        # it): naming two dozen keywords costs CPython microseconds per request.
        return NewJob(
            self.name,  # task
            stored_args,
            stored_kwargs,
            args_json,
            kwargs_json,
            job_queue,
            validate_priority(priority) if priority is not None else self.options.priority,
            self.namespace if namespace is None else validate_name(namespace, "namespace"),
            (validate_max_attempts(max_attempts) if max_attempts is not None
             else self.options.retry.max_attempts),
            self.options.guarantee,
            self.options.deadline_policy,
            delay_seconds,  # delay
            run_at,
            deadline_at,  # deadline
            deadline_in,
            (parse_duration(timeout, "timeout", allow_zero=False) if timeout is not None
             else self.options.timeout),
            idempotency_key,
            None,  # trace_parent: the store's tracer sets it
            gate_key,
            None if self.options.concurrency is None else self.options.concurrency.limit,
            (None if gate_key is None or self.options.breaker is None
             else self.options.breaker.rule),  # gate_breaker
            fairness_key,
            rate_key,
            1 if self.options.rate is None else self.options.rate.cost,  # rate_cost
            (None if self.options.rate is None  # rate_declared
             else (self.options.rate.per_second, self.options.rate.burst)),
        )

    def rate_key_of(self, queue: str, args: list[Any], kwargs: dict[str, Any]) -> str | None:
        """The rate key of a job of this task with these (checked) arguments, or None
        when the task has no rate limit."""
        if self.options.rate is None:
            return None
        return self.options.rate.render(self.name, queue, self._named(args, kwargs))

    def _named(self, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """A key template's fields: the arguments by position (``{0}``) and by name,
        defaults included."""
        named: dict[str, Any] = {str(n): value for n, value in enumerate(args)}
        if self._signature is not None:
            bound = self._signature.bind(*args, **kwargs)
            bound.apply_defaults()
            named.update(bound.arguments)
        else:
            named.update(kwargs)
        return named

    @property
    def keyed(self) -> bool:
        """Whether its jobs get a key (`key_of`): a concurrency limit or a breaker."""
        return self.options.concurrency is not None or self.options.breaker is not None

    def key_of(self, queue: str, args: list[Any], kwargs: dict[str, Any]) -> str | None:
        """The key of a job of this task with these (checked) arguments (its
        concurrency limit's, or its breaker's), or None when the task declares neither."""
        limit = self.options.concurrency
        if limit is None and self.options.breaker is not None:
            limit = ConcurrencyLimit(key=self.options.breaker.key)
        if limit is None:
            return None
        return limit.render(self.name, queue, self._named(args, kwargs))

    def check_arguments(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        """Refuse arguments the task cannot take, before anything is written."""
        if not kwargs and len(args) == self._plain_arity:
            return
        if self._signature is not None:
            try:
                self._signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise InvalidInput(_arguments_field(str(exc), args, kwargs),
                                   f"task {self.name!r}: {exc}") from None
        elif self.command is not None:
            render_command(self.command, args, kwargs, self.name)


def _filled_key(template: str, args: list[Any], kwargs: dict[str, Any], task: str) -> str:
    """A task's fairness key for one job: ``"customer:{customer_id}"`` with the job's
    arguments (by position or name) in its fields."""
    try:
        key = template.format(*args, **kwargs)
    except (IndexError, KeyError, ValueError, AttributeError) as exc:
        raise InvalidInput("fairness_key", f"task {task!r}: its fairness key {template!r} "
                           f"needs an argument the job does not have ({exc})") from None
    return validate_fairness_key(key)


def render_command(command: str, args: list[Any], kwargs: dict[str, Any], task: str) -> str:
    """Fill a shell command's ``{0}``/``{name}`` fields with shell-quoted arguments."""
    try:
        return command.format(
            *(shlex.quote(str(a)) for a in args),
            **{k: shlex.quote(str(v)) for k, v in kwargs.items()},
        )
    except IndexError as exc:
        raise InvalidInput("args", f"shell task {task!r} needs argument {exc}") from None
    except KeyError as exc:
        raise InvalidInput("kwargs", f"shell task {task!r} needs argument {exc}") from None


def _check_deadline_after_start(
    deadline_at: float | None, deadline_in: float | None, run_at: float | None, delay: float
) -> None:
    """Refuse a deadline that falls before the job is due: the job would expire without
    ever being able to run (`Store.enqueue` checks a fixed deadline against the
    store's clock, which only it knows)."""
    if deadline_at is not None and run_at is not None and deadline_at <= run_at:
        raise InvalidInput("deadline", "must be after the job's start (at): the job would "
                           "expire without running")
    if deadline_in is not None and deadline_in <= delay:
        raise InvalidInput("deadline", f"{format_duration(deadline_in)} is not after the "
                           f"delay ({format_duration(delay)}): the job would expire without "
                           "running")


def _arguments_field(problem: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    """Which of ``args`` and ``kwargs`` a binding error is about: the keywords when it
    names one given (unexpected, or given twice), or a missing argument while only
    keywords were given; the positional arguments otherwise."""
    if "keyword argument" in problem or "multiple values" in problem:
        return "kwargs"
    if problem.startswith("missing") and kwargs and not args:
        return "kwargs"
    return "args"


def _plain_arity(signature: inspect.Signature | None) -> int:
    """The number of positional arguments ``signature`` takes when that is all there
    is to check, else -1 (no call matches it, so every call is bound)."""
    if signature is None:
        return -1
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = signature.parameters.values()
    if all(p.kind in plain and p.default is inspect.Parameter.empty for p in params):
        return len(signature.parameters)
    return -1


def _call_signature(fn: Callable[..., Any], pass_context: bool) -> inspect.Signature:
    signature = inspect.signature(fn)
    if pass_context:
        params = list(signature.parameters.values())
        if not params:
            raise InvalidInput("pass_context", f"{fn.__name__} takes no context parameter")
        signature = signature.replace(parameters=params[1:])
    return signature
