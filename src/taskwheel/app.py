"""The App: a task registry, with a client on a store and a namespace.

The registry (tasks, schedules declared in code) is what workers, schedulers and the
command line load from user code; everything the app does to stored jobs, schedules and
runs goes through its `Client`, which the command line and the HTTP server use without
an app.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar, overload

from taskwheel.awaited import run_awaited
from taskwheel.breakers import CircuitBreaker
from taskwheel.client import Client
from taskwheel.clock import Clock
from taskwheel.durations import DurationLike
from taskwheel.errors import InvalidInput, UnknownTask
from taskwheel.handles import JobHandle, WorkflowRunHandle
from taskwheel.jobs import (
    MAX_ARGUMENT_BYTES,
    TEMPLATE_OPTIONS,
    DeadlinePolicy,
    Guarantee,
    Job,
    JobFilter,
    NewJob,
)
from taskwheel.limits import ConcurrencyLimit
from taskwheel.rates import RateLimit
from taskwheel.retry import Retry
from taskwheel.schedules import (
    DEFAULT_MISFIRE_GRACE,
    Schedule,
    ScheduleDefinition,
    build_trigger,
)
from taskwheel.stores import Store, open_store, resolve_database_url
from taskwheel.tasks import ENQUEUE_OPTIONS, Pool, Task, make_options
from taskwheel.validators import validate_name
from taskwheel.workflows import (
    FailurePolicy,
    Workflow,
    WorkflowRun,
    WorkflowRunFilter,
    WorkflowSpec,
)

P = ParamSpec("P")
R = TypeVar("R")

# The URLs `open_store` reads as an in-memory SQLite database.
_IN_MEMORY = frozenset({"sqlite://:memory:", "sqlite:///:memory:"})


def open_checked_store(
    database_url: str | None = None, *, clock: Clock | None = None, migrate: bool = False
) -> Store:
    """Open the store a URL names, ready for use: its schema migrated when ``migrate``
    is true, else checked (`SchemaOutdated`, saying to run ``taskwheel migrate``, when
    it is not the one this taskwheel expects). Nothing migrates implicitly, with one
    exception: an in-memory SQLite database (``sqlite://:memory:``) is empty when it
    is opened and nothing else can reach it, so its schema is created then.

    Example:
        >>> store = open_checked_store("sqlite:///jobs.db")    # after `taskwheel migrate`
        >>> scratch = open_checked_store("sqlite://:memory:")  # created on the spot
    """
    resolved = resolve_database_url(database_url)
    store = open_store(resolved, clock=clock)
    try:
        if migrate or resolved in _IN_MEMORY:
            store.migrate()
        else:
            store.check_schema()
    except BaseException:
        store.close()
        raise
    return store


class App:
    """Where tasks are defined and jobs are enqueued.

    Args:
        database_url: ``sqlite:///path.db`` or ``postgresql://...`` (default:
            ``$TASKWHEEL_DATABASE_URL``, else ``sqlite:///taskwheel.db`` in the current
            directory).
        namespace: the tenant every job of this app belongs to.
        name: what the schedules this app declares in code record as their declarer,
            so that its scheduler tells the ones it no longer declares from those of
            other apps sharing the namespace (and from schedules added by hand). By
            default the module that creates the App (``"mymod"``); give two apps of
            one module, or an app that moves to another module, a name of their own.
        clock: the store's clock (tests inject a `ManualClock`).
        store: an open store to use instead of opening ``database_url`` (used as
            given: neither checked nor migrated).
        migrate: apply pending migrations when the store is opened. By default the
            store's schema is only checked, and a database that is not migrated raises
            `SchemaOutdated` saying to run ``taskwheel migrate``; an in-memory SQLite
            database (``sqlite://:memory:``) has its schema created when it is opened,
            since nothing else can reach it to migrate it.
        max_argument_bytes: the most bytes of JSON a job's ``args``, and its
            ``kwargs``, may take (1 MB by default): a larger value is refused at
            enqueue (`InvalidInput` naming ``args`` or ``kwargs``) by the Python API,
            the command line and every other entry point that loads this app.

    Example:
        >>> app = App("sqlite://:memory:")
        >>> @app.task(retry=Retry(max_attempts=5))
        ... def add(a: int, b: int) -> int:
        ...     return a + b
        >>> add.enqueue(1, 2).status
        <JobStatus.QUEUED: 'queued'>
        >>> tests_app = App("sqlite:///test.db", migrate=True)   # creates its schema
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        namespace: str = "default",
        clock: Clock | None = None,
        store: Store | None = None,
        migrate: bool = False,
        max_argument_bytes: int = MAX_ARGUMENT_BYTES,
        name: str | None = None,
    ) -> None:
        if (isinstance(max_argument_bytes, bool) or not isinstance(max_argument_bytes, int)
                or max_argument_bytes < 2):
            raise InvalidInput("max_argument_bytes", "must be an integer >= 2 (the JSON of "
                               f"an empty list), got {max_argument_bytes!r}")
        self.max_argument_bytes = max_argument_bytes
        self.database_url = resolve_database_url(database_url)
        self.namespace = validate_name(namespace, "namespace")
        if name is None:  # the module whose code calls App(...)
            name = str(sys._getframe(1).f_globals.get("__name__", "__main__"))
        self.name = validate_name(name, "name")
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.schedules: dict[str, ScheduleDefinition] = {}  # declared in code
        self._clock = clock
        self._store = store
        self._migrate_on_open = bool(migrate)
        self._client: Client | None = None
        self._store_hooks: list[Callable[[Store], None]] = []
        self.import_path: str | None = None  # "module:attribute" when loaded by `load_app`

    @property
    def store(self) -> Store:
        """The store, opened on first use with its schema checked (or migrated, for an
        app made with ``migrate=True``; see `open_checked_store`)."""
        if self._store is None:
            self._store = open_checked_store(
                self.database_url, clock=self._clock, migrate=self._migrate_on_open
            )
            self._opened(self._store)
        return self._store

    def when_store_opens(self, hook: Callable[[Store], None]) -> Callable[[], None]:
        """Call ``hook`` with the app's store when it opens (now, if it is open): what
        instruments an app before the command line points it at its database
        (`taskwheel.tracing.instrument`). Returns a function that forgets the hook."""
        self._store_hooks.append(hook)
        if self._store is not None:
            hook(self._store)

        def forget() -> None:
            if hook in self._store_hooks:
                self._store_hooks.remove(hook)

        return forget

    def _opened(self, store: Store) -> None:
        for hook in self._store_hooks:
            hook(store)

    @property
    def client(self) -> Client:
        """The client of this app's namespace on its store (opened on first use).

        Example:
            >>> app.client.list_dead(queue="emails")
            []
        """
        if self._client is None:
            self._client = Client(self.store, self.namespace)
        return self._client

    def _client_on(self, connection: Any) -> Client:
        """The app's client, or the same in the caller's transaction on ``connection``."""
        return self.client if connection is None else self.client.within(connection)

    def migrate(self) -> list[str]:
        """Apply the pending migrations to the app's database, opening its store if
        need be (what ``taskwheel migrate`` does); the names of those applied.

        Example:
            >>> app = App("sqlite:///laptop.db")
            >>> app.migrate()
            ['0001_initial.sql', '0002_schedules.sql', '0003_workflows.sql',
             '0004_due_wakeups.sql', '0005_schedule_owner.sql',
             '0006_api_keys_and_quotas.sql', '0007_webhooks.sql',
             '0008_dispatch_control.sql', '0009_observability.sql', '0010_prunable.sql',
             '0011_prune_by_status.sql', '0012_key_gates.sql', '0013_fair_shares.sql',
             '0014_rate_limits.sql', '0015_key_room.sql', '0016_namespace_shares.sql',
             '0017_caps_reserves_failure_rates.sql', '0018_slots_released_by_report.sql',
             '0019_ready_jobs_whatever_the_statistics.sql', '0020_admission_by_statement.sql',
             '0021_pauses_probed_by_key.sql']
        """
        if self._store is not None:
            return self._store.migrate()
        store = open_store(self.database_url, clock=self._clock)
        try:
            applied = store.migrate()
        except BaseException:
            store.close()
            raise
        self._store = store
        self._opened(store)
        return applied

    def configure(self, *, database_url: str | None = None, namespace: str | None = None) -> None:
        """Point the app at another database or namespace (what the command line's
        ``--database-url`` and ``--namespace`` do to an app loaded with `load_app`).

        The database can only change before the store is first used: jobs already
        read or written through the open store would belong elsewhere. The app's tasks
        prepare jobs of the new namespace from then on.

        Example:
            >>> app = App("sqlite://:memory:")
            >>> app.configure(database_url="sqlite:///other.db", namespace="staging")
        """
        if database_url is not None:
            if self._store is not None:
                raise InvalidInput("database_url", "the app's store is already open; "
                                   "configure the app before its first use")
            self.database_url = resolve_database_url(database_url)
        if namespace is not None:
            self.namespace = validate_name(namespace, "namespace")
            self._client = None
            for task in self.tasks.values():
                task.namespace = self.namespace

    def close(self) -> None:
        self._client = None
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- defining tasks -------------------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
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
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self,
        fn: Callable[P, R] | None = None,
        /,
        *,
        name: str | None = None,
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
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task (sync or async). Use bare or with options.

        ``guarantee="at_most_once"`` never runs a job twice: if its worker vanishes
        the job dies instead. ``deadline_policy="run_late"`` runs jobs whose deadline
        passed. ``pass_context=True`` passes a `Context` as the first argument.
        ``concurrency=ConcurrencyLimit(key=..., limit=n)`` runs at most ``n`` jobs of
        each key at once, across every worker (`taskwheel.limits`);
        ``breaker=CircuitBreaker(failures=5, window="1m", cooldown="30s")`` stops
        running a key's jobs while they keep failing (`taskwheel.breakers`).
        ``fairness_key="customer:{customer_id}"``: each job's share of claims, with the
        job's arguments in its fields (`taskwheel.fairness`).
        ``rate=RateLimit(key=..., rate="100/min", burst=20)`` starts a key's jobs at
        that rate at most, across every worker (`taskwheel.rates`).
        """
        options = make_options(
            queue=queue, priority=priority, timeout=timeout, retry=retry, guarantee=guarantee,
            deadline_policy=deadline_policy, pool=pool, pass_context=pass_context,
            concurrency=concurrency, breaker=breaker,
            fairness_key=fairness_key, rate=rate,
        )

        def register(function: Callable[P, R]) -> Task[P, R]:
            task_name = validate_name(name or function.__name__, "name")
            task: Task[P, R] = Task(task_name, options, namespace=self.namespace,
                                    enqueue=self.enqueue_many, fn=function,
                                    max_argument_bytes=self.max_argument_bytes)
            self._add(task)
            return task

        return register(fn) if fn is not None else register

    def shell_task(
        self,
        name: str,
        command: str,
        *,
        queue: str = "default",
        priority: int = 0,
        timeout: DurationLike | None = None,
        retry: Retry | int | None = None,
        guarantee: Guarantee | str = Guarantee.AT_LEAST_ONCE,
        deadline_policy: DeadlinePolicy | str = DeadlinePolicy.EXPIRE,
        concurrency: ConcurrencyLimit | None = None,
        breaker: CircuitBreaker | None = None,
        fairness_key: str | None = None,
        rate: RateLimit | None = None,
    ) -> Task[..., Any]:
        """Register a shell command as a task. ``{0}`` and ``{name}`` fields are filled
        with the job's arguments, shell-quoted. A non-zero exit fails the attempt.
        ``concurrency``, ``breaker``, ``fairness_key`` and ``rate`` are as for `task`.

        Example:
            >>> app = App("sqlite://:memory:")
            >>> backup = app.shell_task("backup", "tar czf {target} /srv/data", timeout="1h")
        """
        if not isinstance(command, str) or not command.strip():
            raise InvalidInput("command", "must be a non-empty shell command")
        options = make_options(
            queue=queue, priority=priority, timeout=timeout, retry=retry, guarantee=guarantee,
            deadline_policy=deadline_policy, pool=Pool.PROCESS, concurrency=concurrency,
            breaker=breaker, fairness_key=fairness_key, rate=rate,
        )
        task: Task[..., Any] = Task(validate_name(name, "name"), options,
                                    namespace=self.namespace, enqueue=self.enqueue_many,
                                    command=command,
                                    max_argument_bytes=self.max_argument_bytes)
        self._add(task)
        return task

    def _add(self, task: Task[Any, Any]) -> None:
        if task.name in self.tasks:
            raise InvalidInput("name", f"task {task.name!r} is already registered; pass name=")
        self.tasks[task.name] = task

    def get_task(self, name: str) -> Task[Any, Any]:
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTask(name, list(self.tasks)) from None

    # -- jobs -------------------------------------------------------------------------------

    def enqueue(
        self,
        task: str,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        connection: Any = None,
        wait: float = 0.0,
        **options: Any,
    ) -> JobHandle:
        """Enqueue a job of a task by name (options as in `Task.enqueue`; ``wait`` as in
        `enqueue_many`).

        ``connection``: the application's own connection to the app's database -- a
        psycopg 3 ``Connection`` (PostgreSQL), a ``sqlite3.Connection`` to the same
        file (SQLite), or a SQLAlchemy ``Session`` or ``Connection`` over either. The
        job is then created in the transaction open on it (or that its next statement
        would open): it exists, and wakes the workers, when the application commits;
        a rollback leaves no job and no wake-up. An error raised here inside that
        transaction is the application's to roll back, as for its own statements.

        Example:
            >>> with psycopg.connect(url) as conn:           # doctest: +SKIP
            ...     conn.execute("INSERT INTO orders (id) VALUES (%s)", [42])
            ...     app.enqueue("ship", [42], connection=conn)
        """
        return self.enqueue_many([self.request(task, args, kwargs, **options)],
                                 connection=connection, wait=wait)[0]

    async def enqueue_async(
        self,
        task: str,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        connection: Any = None,
        **options: Any,
    ) -> JobHandle:
        """`enqueue` from a coroutine, without blocking its event loop; ``connection``
        may then be the application's psycopg ``AsyncConnection``, whose open
        transaction creates the job (commit: it exists and wakes the workers; rollback:
        nothing), as well as anything `enqueue` takes.

        Example:
            >>> async with await psycopg.AsyncConnection.connect(url) as conn:  # doctest: +SKIP
            ...     await conn.execute("INSERT INTO orders (id) VALUES (%s)", [42])
            ...     await app.enqueue_async("ship", [42], connection=conn)
        """
        return (await self.enqueue_many_async([self.request(task, args, kwargs, **options)],
                                              connection=connection))[0]

    async def enqueue_many_async(
        self, requests: Iterable[NewJob], /, *, connection: Any = None
    ) -> list[JobHandle]:
        """`enqueue_many` from a coroutine (``connection`` as in `enqueue_async`)."""
        batch = list(requests)
        return await run_awaited(
            lambda conn: self.enqueue_many(batch, connection=conn), connection)

    def request(
        self,
        task: str,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        namespace: str | None = None,
        **options: Any,
    ) -> NewJob:
        """A validated request for a job of a task by name (options as in
        `Task.enqueue`), for this app's namespace or ``namespace``; written nowhere yet.

        Example:
            >>> client.enqueue_many([app.request("send", ["a@b.c"], namespace="team-a")])
        """
        unknown = set(options) - ENQUEUE_OPTIONS
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "unknown enqueue option")
        return self.get_task(task).request(args, kwargs, namespace=namespace, **options)

    def enqueue_many(
        self, requests: Iterable[NewJob], /, *, connection: Any = None, wait: float = 0.0
    ) -> list[JobHandle]:
        """Create many jobs in one transaction (all or none): the application's own,
        open on ``connection``, when one is given (see `enqueue`). ``wait``: seconds to
        keep trying while a queue is full before `QueueFull` (see `Client.enqueue_many`);
        not inside the application's transaction, which a refusal leaves to it.

        Example:
            >>> app = App("sqlite://:memory:")
            >>> @app.task
            ... def ping(n: int) -> int:
            ...     return n
            >>> handles = app.enqueue_many(ping.prepare(n) for n in range(3))
        """
        if connection is not None and wait:
            raise InvalidInput("wait", "cannot wait for room inside the application's "
                               "transaction: a refusal is the application's to roll back")
        return self._client_on(connection).enqueue_many(requests, wait=wait)

    # -- schedules -------------------------------------------------------------------------

    def schedule(
        self,
        name: str,
        task: Task[Any, Any] | str | None = None,
        *,
        workflow: Workflow | None = None,
        cron: str | None = None,
        every: DurationLike | None = None,
        at: datetime | None = None,
        timezone: str | None = None,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        misfire: str = "run_once",
        max_catch_up: int = 10,
        misfire_grace: DurationLike = DEFAULT_MISFIRE_GRACE,
        overlap: str = "allow",
        dst_gap: str = "run_after_gap",
        dst_fold: str = "first",
        jitter: DurationLike = 0,
        start: datetime | None = None,
        end: datetime | None = None,
        **job_options: Any,
    ) -> ScheduleDefinition:
        """Declare a schedule of ``task``: exactly one of ``cron`` (with ``timezone``,
        default UTC, and the DST policies), ``every`` (elapsed time, counted from
        ``start``, else from the Unix epoch, so ``every="15m"`` fires on the quarter
        hours) or ``at`` (once). ``job_options``: queue, priority, timeout,
        max_attempts, deadline (a duration after each fire time).

        With ``workflow=`` instead of a task, each fire submits a run of the workflow
        (validated now; its steps carry their own arguments and options), at most one
        per fire time; ``overlap`` is then ``allow`` or ``skip`` (of a running run).

        Declaring writes nothing: the scheduler upserts the app's declared schedules
        by name when it starts (`sync_schedules`), so a deploy that changes one
        updates it. `add_schedule` declares and writes at once.

        Example:
            >>> app.schedule("standup", send, cron="0 9 * * MON-FRI",
            ...              timezone="America/New_York", args=["team"], overlap="skip")
            >>> app.schedule("nightly-etl", workflow=etl, cron="0 2 * * *", overlap="skip")
        """
        definition = self.define_schedule(
            name, task, workflow=workflow, cron=cron, every=every, at=at, timezone=timezone,
            args=args, kwargs=kwargs, misfire=misfire, max_catch_up=max_catch_up,
            misfire_grace=misfire_grace, overlap=overlap, dst_gap=dst_gap, dst_fold=dst_fold,
            jitter=jitter, start=start, end=end, job_options=job_options,
        )
        self.schedules[definition.name] = definition
        return definition

    def add_schedule(
        self, name: str, task: Task[Any, Any] | str | None = None, *,
        connection: Any = None, **options: Any,
    ) -> Schedule:
        """Declare a schedule (as `schedule`) and write it now -- in the application's
        transaction on ``connection`` when one is given (see `enqueue`). One that could
        never fire (its ``end``, or its one time ``at``, already past) is refused with
        `InvalidInput` naming that field, and nothing is declared or written."""
        previous = self.schedules.get(name)
        definition = self.schedule(name, task, **options)
        try:
            definition.check_fires(self.store.now())
        except InvalidInput:
            if previous is None:
                del self.schedules[definition.name]
            else:
                self.schedules[definition.name] = previous
            raise
        return self._client_on(connection).upsert_schedule(definition)[0]

    def add_schedules(
        self, definitions: Iterable[ScheduleDefinition], *, connection: Any = None,
    ) -> list[bool]:
        """Write many schedules in one transaction: each made by `define_schedule`
        (validated, not declared: the app keeps none of them), all written or none.
        Whether each changed anything, in order. One commit for them all, where
        `add_schedule` takes one each: for thousands of schedules (one per customer),
        write them in batches of a few thousand. A schedule that could never fire, or
        a name given twice, is refused with `InvalidInput` naming it, and nothing is
        written.

        Example:
            >>> app.add_schedules(
            ...     app.define_schedule(f"report-{c}", send, cron="0 9 * * *", args=[c])
            ...     for c in customers)  # doctest: +SKIP
        """
        definitions = list(definitions)
        now = self.store.now()
        for definition in definitions:
            try:
                definition.check_fires(now)
            except InvalidInput as error:
                raise InvalidInput(
                    error.field, f"schedule {definition.name!r}: {error.reason}") from None
        return self._client_on(connection).upsert_schedules(definitions)

    async def add_schedule_async(
        self, name: str, task: Task[Any, Any] | str | None = None, *,
        connection: Any = None, **options: Any,
    ) -> Schedule:
        """`add_schedule` from a coroutine, without blocking its event loop;
        ``connection`` may be the application's psycopg ``AsyncConnection`` (see
        `enqueue_async`)."""
        return await run_awaited(
            lambda conn: self.add_schedule(name, task, connection=conn, **options),
            connection)

    def sync_schedules(self) -> list[tuple[Schedule, bool]]:
        """Upsert every declared schedule, recorded as declared by this app (`name`);
        (schedule, changed) for each."""
        return [
            self.client.upsert_schedule(d, declared_by=self.name)
            for d in self.schedules.values()
        ]

    def undeclared_schedules(self) -> list[Schedule]:
        """The active schedules of this app's namespace that this app declared once
        (`sync_schedules` wrote them) and declares no longer: removed from the code,
        they still fire until paused or removed. Schedules of other apps and those
        added by hand are not this app's to judge.

        Example:
            >>> [s.name for s in app.undeclared_schedules()]
            ['old-report']
        """
        active = self.store.list_schedules(self.client.namespace, declared_by=self.name)
        return [schedule for schedule in active if schedule.name not in self.schedules]

    def define_schedule(
        self,
        name: str,
        task: Task[Any, Any] | str | None,
        *,
        workflow: Workflow | None = None,
        cron: str | None = None,
        every: DurationLike | None = None,
        at: datetime | None = None,
        timezone: str | None = None,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        misfire: str = "run_once",
        max_catch_up: int = 10,
        misfire_grace: DurationLike = "1s",
        overlap: str = "allow",
        dst_gap: str = "run_after_gap",
        dst_fold: str = "first",
        jitter: DurationLike = 0,
        start: datetime | None = None,
        end: datetime | None = None,
        job_options: dict[str, Any] | None = None,
        namespace: str | None = None,
    ) -> ScheduleDefinition:
        """A validated schedule definition (as `schedule` declares, without keeping it),
        for this app's namespace or ``namespace``."""
        namespace = self.namespace if namespace is None else namespace
        job_options = job_options or {}
        unknown = set(job_options) - TEMPLATE_OPTIONS
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "unknown schedule option")
        request: NewJob | WorkflowSpec
        if workflow is not None:
            if task is not None:
                raise InvalidInput("workflow", "give a task or a workflow, not both")
            given = [key for key, value in (("args", args), ("kwargs", kwargs)) if value]
            given += sorted(job_options)
            if given:
                raise InvalidInput(given[0], "a workflow schedule takes its steps' arguments "
                                   "and options from the workflow")
            if not isinstance(workflow, Workflow):
                raise InvalidInput("workflow", f"expected a taskwheel.Workflow, got {workflow!r}")
            request = workflow.compile(self.tasks, namespace)
        elif task is None:
            raise InvalidInput("task", "give the task (or workflow=) the schedule fires")
        else:
            resolved = task if isinstance(task, Task) else self.get_task(task)
            request = resolved.request(args, kwargs, namespace=namespace, **job_options)
        trigger = build_trigger(
            cron=cron, every=every, at=at, timezone=timezone, dst_gap=dst_gap,
            dst_fold=dst_fold, start=start,
        )
        return ScheduleDefinition.build(
            name, request, trigger, misfire=misfire, max_catch_up=max_catch_up,
            misfire_grace=misfire_grace, overlap=overlap, jitter=jitter, start=start, end=end,
        )

    def get_schedule(self, name: str) -> Schedule:
        return self.client.get_schedule(name)

    # -- jobs -------------------------------------------------------------------------------

    def job(self, job_id: int) -> JobHandle:
        """A handle on an existing job."""
        return self.client.job(job_id)

    def list_jobs(self, where: JobFilter | None = None) -> list[Job]:
        return self.client.list_jobs(where)

    # -- workflows ----------------------------------------------------------------------------

    def submit(
        self, workflow: Workflow, *, on_failure: FailurePolicy | str | None = None,
        connection: Any = None,
    ) -> WorkflowRunHandle:
        """Validate ``workflow`` against this app's tasks and start a run of it, in one
        transaction (the application's on ``connection`` when one is given: see
        `enqueue`): its first steps are queued at once, every other step waits for its
        dependencies. ``on_failure`` overrides the workflow's default policy for this
        run (steps that name their own keep it). Bad input raises `InvalidInput` naming
        the field (``steps.<step>.<field>``, or the cycle) and writes nothing.

        Example:
            >>> wf = Workflow("etl")
            >>> a = wf.step(extract, ["2024-01-01"])
            >>> b = wf.step(load, after=[a])
            >>> run = app.submit(wf, on_failure="fail_fast")
            >>> run.result(timeout=60)   # {"extract": ..., "load": ...}
        """
        return self._client_on(connection).submit(self.compile(workflow, on_failure=on_failure))

    async def submit_async(
        self, workflow: Workflow, *, on_failure: FailurePolicy | str | None = None,
        connection: Any = None,
    ) -> WorkflowRunHandle:
        """`submit` from a coroutine, without blocking its event loop; ``connection``
        may be the application's psycopg ``AsyncConnection`` (see `enqueue_async`)."""
        spec = self.compile(workflow, on_failure=on_failure)  # bad input: raised here
        return await run_awaited(lambda conn: self._client_on(conn).submit(spec), connection)

    def compile(
        self, workflow: Workflow, *, namespace: str | None = None,
        on_failure: FailurePolicy | str | None = None,
    ) -> WorkflowSpec:
        """``workflow`` validated against this app's tasks, for this app's namespace
        or ``namespace``; submitted nowhere yet (`Client.submit` does)."""
        if not isinstance(workflow, Workflow):
            raise InvalidInput("workflow", f"expected a taskwheel.Workflow, got {workflow!r}")
        return workflow.compile(self.tasks, self.namespace if namespace is None else namespace,
                                on_failure)

    def workflow_run(self, run_id: int) -> WorkflowRunHandle:
        """A handle on an existing workflow run."""
        return self.client.workflow_run(run_id)

    def list_workflow_runs(self, where: WorkflowRunFilter | None = None) -> list[WorkflowRun]:
        return self.client.list_workflow_runs(where)


def load_app(spec: str) -> App:
    """Import ``module:attribute`` (or ``module``, finding its App) and return the App."""
    module_name, _, attribute = spec.partition(":")
    dotted = module_name.split(".")
    if not all(part.isidentifier() for part in dotted) or (
        attribute and not attribute.isidentifier()
    ):
        raise InvalidInput("app", f"expected 'module:attribute', got {spec!r}")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput("app", f"cannot import {module_name!r}: {exc}") from None
    if attribute:
        found = getattr(module, attribute, None)
    else:
        candidates = [value for value in vars(module).values() if isinstance(value, App)]
        found = candidates[0] if len(candidates) == 1 else None
    if not isinstance(found, App):
        raise InvalidInput("app", f"{spec!r} is not a taskwheel.App")
    found.import_path = spec
    return found
