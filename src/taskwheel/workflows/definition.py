"""What users declare (`Workflow`, `Step`) and what stores keep (`WorkflowSpec`,
`StepSpec`): declarations validated against an app's tasks before anything is written."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from taskwheel.errors import InvalidInput
from taskwheel.jobs import TEMPLATE_OPTIONS, JobTemplate, NewJob, unique_keys
from taskwheel.validators import validate_choice, validate_name
from taskwheel.workflows.graph import listing, topological_order
from taskwheel.workflows.policies import FailurePolicy

MAX_STEPS = 10_000
STEP_OPTIONS = TEMPLATE_OPTIONS  # queue, priority, timeout, max_attempts, deadline


class StepTask(Protocol):
    """What a workflow needs of a task (a `taskwheel.Task` is one): its name, and a
    validated job request for given arguments and options. Workflows depend on this,
    not on the task registry, so what stores keep needs no tasks."""

    @property
    def name(self) -> str: ...

    def request(self, *args: Any, **kwargs: Any) -> NewJob: ...


# -- what stores keep -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One validated step: its job template, the steps it runs after and its policy."""

    name: str
    job: JobTemplate
    after: tuple[str, ...]
    on_failure: FailurePolicy

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "after": list(self.after),
                "on_failure": self.on_failure.value, "job": self.job.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepSpec:
        return cls(name=data["name"], job=JobTemplate.from_dict(data["job"]),
                   after=tuple(data["after"]), on_failure=FailurePolicy(data["on_failure"]))


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    """A validated workflow for one namespace; ``steps`` are in topological order (every
    step after the steps it depends on) and every policy is resolved."""

    name: str
    namespace: str
    on_failure: FailurePolicy
    steps: tuple[StepSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the namespace, JSON-ready (kept in a schedule's spec)."""
        return {"name": self.name, "on_failure": self.on_failure.value,
                "steps": [step.to_dict() for step in self.steps]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], namespace: str) -> WorkflowSpec:
        return cls(name=data["name"], namespace=namespace,
                   on_failure=FailurePolicy(data["on_failure"]),
                   steps=tuple(StepSpec.from_dict(step) for step in data["steps"]))


# -- what users declare ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """A step of a `Workflow`, as `Workflow.step` returns it: pass it to ``after=``."""

    name: str
    task: str
    args: tuple[Any, ...] | list[Any] | None
    kwargs: Mapping[str, Any] | None
    after: tuple[str, ...]
    on_failure: FailurePolicy | None
    options: Mapping[str, Any]


class Workflow:
    """A DAG of steps, each a task's job, submitted as one run with `App.submit`.

    Args:
        name: what the runs are called.
        on_failure: the runs' default failure policy (`App.submit` and each step may
            override it): ``fail_downstream``, ``fail_fast`` or ``continue``.

    Example:
        >>> wf = Workflow("etl")
        >>> a = wf.step(extract, ["s3://bucket/day"])
        >>> b = wf.step(transform, after=[a], timeout="10m")
        >>> c = wf.step(load, after=[b], on_failure="continue")
        >>> run = app.submit(wf, on_failure="fail_fast")
    """

    def __init__(self, name: str, *, on_failure: FailurePolicy | str = "fail_downstream") -> None:
        self.name = validate_name(name, "name")
        self.on_failure = _failure_policy(on_failure, "on_failure")
        self.steps: dict[str, Step] = {}

    def __repr__(self) -> str:
        return f"<Workflow {self.name} steps={len(self.steps)}>"

    def step(
        self,
        task: StepTask | str,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        after: Iterable[Step | str] = (),
        on_failure: FailurePolicy | str | None = None,
        **options: Any,
    ) -> Step:
        """Add a step running ``task`` with ``args``/``kwargs``, after the steps in
        ``after`` (handles or names; a name may refer to a step added later).

        ``name`` defaults to the task's name and must be unique in the workflow.
        ``options``: queue, priority, timeout, max_attempts, deadline (a duration
        from the run's start). Arguments are checked against the task at `compile`.
        """
        task_name = task if isinstance(task, str) else getattr(task, "name", None)
        if not isinstance(task_name, str):
            raise InvalidInput("task", f"expected a taskwheel.Task or a task name, got {task!r}")
        step_name = validate_name(name if name is not None else task_name, "name")
        where = f"steps.{step_name}"
        if step_name in self.steps:
            raise InvalidInput("name", f"duplicate step {step_name!r}; give each step its "
                               "own name=")
        unknown = set(options) - STEP_OPTIONS
        if unknown:
            raise InvalidInput(f"{where}.{sorted(unknown)[0]}", "unknown step option (use "
                               f"{', '.join(sorted(STEP_OPTIONS))})")
        if isinstance(after, Step | str):
            after = [after]
        names = [item.name if isinstance(item, Step) else item for item in after]
        for item in names:
            if not isinstance(item, str):
                raise InvalidInput(f"{where}.after", f"expected steps or step names, got "
                                   f"{item!r}")
        if len(set(names)) != len(names):
            raise InvalidInput(f"{where}.after", f"names a step twice: {names}")
        step = Step(
            name=step_name, task=task_name, args=args, kwargs=kwargs, after=tuple(names),
            on_failure=None if on_failure is None else _failure_policy(
                on_failure, f"{where}.on_failure"),
            options=dict(options),
        )
        self.steps[step_name] = step
        return step

    def compile(
        self,
        tasks: Mapping[str, StepTask],
        namespace: str,
        on_failure: FailurePolicy | str | None = None,
    ) -> WorkflowSpec:
        """Validate every step against ``tasks`` (a task registry) into a spec; every
        error names its field (``steps.<step>.<field>``) and nothing is written.

        Refused: no steps, too many, a step after an unknown step, a cycle (named, as
        ``a -> b -> a``), an unknown task, arguments the task cannot take or that are
        not JSON, a bad option or policy.
        """
        if not self.steps:
            raise InvalidInput("steps", f"workflow {self.name!r} has no steps")
        if len(self.steps) > MAX_STEPS:
            raise InvalidInput("steps", f"{len(self.steps)} steps; at most {MAX_STEPS}")
        default = self.on_failure if on_failure is None else _failure_policy(
            on_failure, "on_failure")
        for step in self.steps.values():
            for dependency in step.after:
                if dependency not in self.steps:
                    raise InvalidInput(
                        f"steps.{step.name}.after",
                        f"unknown step {dependency!r} (steps: {listing(self.steps)})",
                    )
        order = topological_order({name: step.after for name, step in self.steps.items()})
        specs = []
        for name in order:
            step = self.steps[name]
            specs.append(StepSpec(
                name=name, job=_job_template(step, tasks), after=step.after,
                on_failure=step.on_failure or default,
            ))
        return WorkflowSpec(self.name, validate_name(namespace, "namespace"), default,
                            tuple(specs))

    # -- files --------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: object) -> Workflow:
        """A workflow from its file form: ``{"name", "on_failure"?, "steps": [{"task",
        "name"?, "args"?, "kwargs"?, "after"?, "on_failure"?, <options>?}]}``.

        Example:
            >>> wf = Workflow.from_dict({"name": "etl", "steps": [
            ...     {"task": "extract"}, {"task": "load", "after": ["extract"]}]})
        """
        if not isinstance(data, dict):
            raise InvalidInput("file", "a workflow file holds an object with name and steps")
        _no_unknown_keys(data, {"name", "on_failure", "steps"}, "")
        if "name" not in data:
            raise InvalidInput("name", "missing: the workflow's name")
        workflow = cls(data["name"], on_failure=data.get("on_failure", "fail_downstream"))
        steps = data.get("steps")
        if not isinstance(steps, list):
            raise InvalidInput("steps", "must be a list of steps")
        for index, item in enumerate(steps):
            where = f"steps[{index}]"
            if not isinstance(item, dict):
                raise InvalidInput(where, f"a step is an object with a task, got {item!r}")
            _no_unknown_keys(item, {"task", "name", "args", "kwargs", "after", "on_failure",
                                    *STEP_OPTIONS}, f"{where}.")
            if "task" not in item:
                raise InvalidInput(f"{where}.task", "missing: the task this step runs")
            options = {key: item[key] for key in STEP_OPTIONS if key in item}
            try:
                workflow.step(
                    _text(item["task"], f"{where}.task"), item.get("args"), item.get("kwargs"),
                    name=item.get("name"), after=_after(item.get("after", []), where),
                    on_failure=item.get("on_failure"), **options,
                )
            except InvalidInput as exc:
                if exc.field in ("name", "task"):
                    raise InvalidInput(f"{where}.{exc.field}", exc.reason) from None
                raise
        return workflow

    @classmethod
    def parse(cls, text: str, format: str) -> Workflow:
        """A workflow from the text of a ``json`` or ``yaml`` file (YAML needs PyYAML)."""
        if format == "json":
            try:
                data = json.loads(text, object_pairs_hook=unique_keys)
            except json.JSONDecodeError as exc:
                raise InvalidInput("file", f"not valid JSON: {exc}") from None
            except ValueError as exc:  # a key given twice: which value was meant?
                raise InvalidInput("file", f"{exc}") from None
        elif format == "yaml":
            try:
                # PyYAML is optional (the ``yaml`` extra), and typed loosely on purpose:
                # its stubs would be one more dependency for one call.
                yaml: Any = importlib.import_module("yaml")
            except ImportError:
                raise InvalidInput("file", "YAML workflow files need PyYAML (pip install "
                                   "'taskwheel[yaml]'); or write the file as JSON") from None
            try:
                data = yaml.load(text, Loader=_unique_key_loader(yaml))
            except yaml.YAMLError as exc:
                raise InvalidInput("file", f"not valid YAML: {exc}") from None
        else:
            raise InvalidInput("format", f"unknown workflow file format {format!r} "
                               "(use json or yaml)")
        return cls.from_dict(data)


def _unique_key_loader(yaml: Any) -> Any:
    """PyYAML's safe loader, refusing a mapping that gives a key twice (it would keep
    the last value silently, as JSON decoders do)."""

    class UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: list[Any] = []
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} appears twice", key_node.start_mark)
                seen.append(key)
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def _job_template(step: Step, tasks: Mapping[str, StepTask]) -> JobTemplate:
    where = f"steps.{step.name}"
    task = tasks.get(step.task)
    if task is None:
        known = f" (known: {', '.join(sorted(tasks))})" if tasks else ""
        raise InvalidInput(f"{where}.task", f"unknown task {step.task!r}{known}")
    if "deadline" in step.options and isinstance(step.options["deadline"], datetime):
        raise InvalidInput(f"{where}.deadline", "give a step a relative deadline (a "
                           "duration from the run's start such as '5m'), not a fixed time")
    args = step.args
    if args is not None and not isinstance(args, list | tuple):
        raise InvalidInput(f"{where}.args", f"must be a list, got {type(args).__name__}")
    kwargs = step.kwargs
    if kwargs is not None and not isinstance(kwargs, dict):
        raise InvalidInput(f"{where}.kwargs", f"must be an object, got {type(kwargs).__name__}")
    try:
        return JobTemplate.of(task.request(args, kwargs, **step.options))
    except InvalidInput as exc:
        raise InvalidInput(f"{where}.{exc.field}", exc.reason) from None


def _failure_policy(value: object, field_name: str) -> FailurePolicy:
    return validate_choice(FailurePolicy, value, field_name, noun="policy")


def _no_unknown_keys(data: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise InvalidInput(f"{prefix}{unknown[0]}",
                           f"unknown key (use {', '.join(sorted(allowed))})")


def _text(value: object, field_name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field_name, f"must be a string, got {value!r}")
    return value


def _after(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput(f"{where}.after", f"must be a step name or a list of them, got "
                           f"{value!r}")
    return value
