"""Workflow definitions and the pure logic behind runs: validation before anything is
written, the topological order and named cycles (property-tested on random graphs), the
failure policies, the run's state, what a retry re-runs, and the text drawing."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import taskwheel
from taskwheel.errors import IllegalTransition, InvalidInput
from taskwheel.lifecycle import TERMINAL, JobStatus
from taskwheel.workflows import (
    MAX_STEPS,
    FailurePolicy,
    RunStatus,
    StepEffect,
    StepState,
    Workflow,
    draw,
    effect_of_end,
    find_cycle,
    plan_retry,
    run_status,
    topological_order,
)

S = JobStatus
P = FailurePolicy


@pytest.fixture
def app() -> taskwheel.App:
    """An app with tasks; its store is never opened."""
    application = taskwheel.App("sqlite://:memory:", namespace="etl")

    @application.task
    def extract(day: str) -> list[int]:
        return [1, 2]

    @application.task(pass_context=True, queue="heavy", retry=5)
    def transform(ctx: taskwheel.Context, factor: int = 2) -> None: ...

    @application.task
    def load() -> None: ...

    return application


def etl() -> Workflow:
    wf = Workflow("etl")
    a = wf.step("extract", ["2024-01-01"])
    b = wf.step("transform", after=[a], kwargs={"factor": 3}, timeout="10m")
    wf.step("load", after=[b], on_failure="continue")
    return wf


# -- defining and compiling -------------------------------------------------------------------


def test_a_compiled_workflow_has_its_steps_in_order_with_their_jobs_and_policies(
    app: taskwheel.App,
) -> None:
    spec = etl().compile(app.tasks, app.namespace, on_failure="fail_fast")

    assert (spec.name, spec.namespace, spec.on_failure) == ("etl", "etl", P.FAIL_FAST)
    assert [(s.name, s.after, s.on_failure) for s in spec.steps] == [
        ("extract", (), P.FAIL_FAST),
        ("transform", ("extract",), P.FAIL_FAST),
        ("load", ("transform",), P.CONTINUE),
    ]
    transform = spec.steps[1].job
    assert (transform.task, transform.queue, transform.max_attempts, transform.timeout) == (
        "transform", "heavy", 5, 600.0
    )
    assert json.loads(transform.kwargs_json) == {"factor": 3}
    assert json.loads(spec.steps[0].job.args_json) == ["2024-01-01"]


def test_the_workflow_default_policy_applies_when_submit_gives_none(app: taskwheel.App) -> None:
    wf = Workflow("etl", on_failure="continue")
    wf.step("load")
    assert wf.compile(app.tasks, "etl").steps[0].on_failure is P.CONTINUE


def test_steps_may_name_later_steps_and_come_out_in_dependency_order(
    app: taskwheel.App,
) -> None:
    wf = Workflow("backwards")
    wf.step("load", after=["transform"])
    wf.step("transform", after=["extract"])
    wf.step("extract", ["d"])

    spec = wf.compile(app.tasks, "etl")

    assert [s.name for s in spec.steps] == ["extract", "transform", "load"]


def test_a_spec_round_trips_through_its_json(app: taskwheel.App) -> None:
    spec = etl().compile(app.tasks, "etl")
    data = json.loads(json.dumps(spec.to_dict()))
    assert type(spec).from_dict(data, "etl") == spec


def cycle_of(*edges: tuple[str, str]) -> Workflow:
    """Steps named by ``edges`` (a runs before b for each (a, b)), all running ``load``."""
    wf = Workflow("cyclic")
    names = list(dict.fromkeys(name for edge in edges for name in edge))
    for name in names:
        wf.step("load", name=name, after=[a for a, b in edges if b == name])
    return wf


@pytest.mark.parametrize(("workflow", "field", "reason"), [
    (cycle_of(("a", "b"), ("b", "c"), ("c", "a")), "after",
     "the steps form a cycle: a -> b -> c -> a"),
    (cycle_of(("a", "a")), "after", "the steps form a cycle: a -> a"),
    (cycle_of(("x", "a"), ("a", "b"), ("b", "a"), ("b", "y")), "after",
     "cycle: a -> b -> a"),
])
def test_a_cycle_is_refused_and_named(
    app: taskwheel.App, workflow: Workflow, field: str, reason: str
) -> None:
    with pytest.raises(InvalidInput, match=reason) as refused:
        workflow.compile(app.tasks, "etl")
    assert refused.value.field == field


def bad(**step: Any) -> Workflow:
    wf = Workflow("bad")
    wf.step("extract", ["d"])
    wf.step(**{"task": "load", **step})
    return wf


@pytest.mark.parametrize(("workflow", "field", "reason"), [
    (Workflow("empty"), "steps", "has no steps"),
    (bad(after=["extrakt"]), "steps.load.after", "unknown step 'extrakt'"),
    (bad(task="lode"), "steps.lode.task", "unknown task 'lode'"),
    (bad(args=[1]), "steps.load.args", "too many positional arguments"),
    (bad(task="extract", name="again", args=[object()]), "steps.again.args",
     "not JSON-serialisable"),
    (bad(task="extract", name="again", kwargs={"day": "d", "nope": 1}), "steps.again.kwargs",
     "unexpected keyword argument 'nope'"),
    (bad(args="d"), "steps.load.args", "must be a list"),
    (bad(timeout="-1s"), "steps.load.timeout", "must not be negative"),
    (bad(priority=10**9), "steps.load.priority", "between"),
    (bad(deadline=datetime(2030, 1, 1, tzinfo=UTC)), "steps.load.deadline",
     "relative deadline"),
])
def test_bad_input_is_refused_naming_the_field(
    app: taskwheel.App, workflow: Workflow, field: str, reason: str
) -> None:
    with pytest.raises(InvalidInput, match=reason) as refused:
        workflow.compile(app.tasks, "etl")
    assert refused.value.field == field


@pytest.mark.parametrize(("call", "field", "reason"), [
    (lambda wf: wf.step("extract", ["d"]), "name", "duplicate step 'extract'"),
    (lambda wf: wf.step("load", on_failure="explode"), "steps.load.on_failure",
     "unknown policy 'explode'"),
    (lambda wf: wf.step("load", delay="1s"), "steps.load.delay", "unknown step option"),
    (lambda wf: wf.step("load", after=["extract", "extract"]), "steps.load.after", "twice"),
    (lambda wf: wf.step("load", after=[3]), "steps.load.after", "step names"),
    (lambda wf: wf.step("load", name="no spaces"), "name", "letters, digits"),
    (lambda wf: wf.step(42), "task", "expected a taskwheel.Task"),
])
def test_a_bad_step_is_refused_when_it_is_added(call: Any, field: str, reason: str) -> None:
    wf = Workflow("etl")
    wf.step("extract", ["d"])
    with pytest.raises(InvalidInput, match=reason) as refused:
        call(wf)
    assert refused.value.field == field
    assert list(wf.steps) == ["extract"]


def test_a_workflow_needs_a_valid_name_and_policy() -> None:
    with pytest.raises(InvalidInput, match="letters"):
        Workflow("no good")
    with pytest.raises(InvalidInput) as refused:
        Workflow("ok", on_failure="sometimes")
    assert refused.value.field == "on_failure"


def test_a_workflow_has_at_most_max_steps(app: taskwheel.App) -> None:
    wf = Workflow("huge")
    for n in range(MAX_STEPS + 1):
        wf.step("load", name=f"s{n}")
    with pytest.raises(InvalidInput, match=f"at most {MAX_STEPS}"):
        wf.compile(app.tasks, "etl")


def test_a_task_object_is_a_step_of_its_name(app: taskwheel.App) -> None:
    wf = Workflow("objects")
    step = wf.step(app.tasks["extract"], ["d"])
    assert (step.name, step.task) == ("extract", "extract")


# -- files ------------------------------------------------------------------------------------

FILE = {
    "name": "etl",
    "on_failure": "fail_fast",
    "steps": [
        {"task": "extract", "args": ["2024-01-01"]},
        {"task": "transform", "after": "extract", "kwargs": {"factor": 3}, "timeout": "10m"},
        {"task": "load", "after": ["transform"], "on_failure": "continue"},
    ],
}


def test_a_json_file_gives_the_same_spec_as_the_python_definition(app: taskwheel.App) -> None:
    from_file = Workflow.parse(json.dumps(FILE), "json").compile(app.tasks, "etl")
    assert from_file == etl().compile(app.tasks, "etl", on_failure="fail_fast")


YAML = """\
name: etl
on_failure: fail_fast
steps:
  - task: extract
    args: ["2024-01-01"]
  - task: transform
    after: extract
    kwargs: {factor: 3}
    timeout: 10m
  - task: load
    after: [transform]
    on_failure: continue
"""


def test_a_yaml_file_gives_the_same_spec_as_the_json_one(app: taskwheel.App) -> None:
    from_yaml = Workflow.parse(YAML, "yaml").compile(app.tasks, "etl")
    assert from_yaml == Workflow.parse(json.dumps(FILE), "json").compile(app.tasks, "etl")


def test_yaml_without_pyyaml_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(InvalidInput, match=r"taskwheel\[yaml\]"):
        Workflow.parse(YAML, "yaml")


def file_with(**changes: Any) -> str:
    data: dict[str, Any] = json.loads(json.dumps(FILE))
    for key, value in changes.items():
        if key.startswith("step1_"):
            data["steps"][1][key.removeprefix("step1_")] = value
        else:
            data[key] = value
    return json.dumps(data)


@pytest.mark.parametrize(("text", "field", "reason"), [
    ("{not json", "file", "not valid JSON"),
    ("[1, 2]", "file", "an object with name and steps"),
    (file_with(colour="red"), "colour", "unknown key"),
    (file_with(steps={"a": 1}), "steps", "must be a list"),
    (json.dumps({"steps": []}), "name", "missing"),
    (file_with(step1_task=None), "steps[1].task", "must be a string"),
    (file_with(step1_tsak="x"), "steps[1].tsak", "unknown key"),
    (file_with(step1_after=3), "steps[1].after", "a step name or a list"),
    (file_with(step1_name="extract"), "steps[1].name", "duplicate step 'extract'"),
    (file_with(step1_on_failure="never"), "steps.transform.on_failure", "unknown policy"),
])
def test_a_bad_file_is_refused_naming_the_field(text: str, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as refused:
        Workflow.parse(text, "json")
    assert refused.value.field == field


# -- the graph: properties ------------------------------------------------------------------


@st.composite
def dags(draw_: st.DrawFn, max_nodes: int = 12) -> dict[str, list[str]]:
    """A random DAG as {step: dependencies}, keys in a random order (not topological)."""
    n = draw_(st.integers(1, max_nodes))
    deps = [
        sorted(draw_(st.sets(st.integers(0, i - 1), max_size=i))) if i else [] for i in range(n)
    ]
    order = draw_(st.permutations(range(n)))
    return {f"s{i}": [f"s{d}" for d in deps[i]] for i in order}


@st.composite
def cyclic_graphs(draw_: st.DrawFn) -> dict[str, list[str]]:
    """A random DAG with a path closed into a cycle (a self-loop when the path is one)."""
    graph = draw_(dags())
    names = sorted(graph, key=lambda name: int(name[1:]))
    path = sorted(draw_(st.sets(st.sampled_from(names), min_size=1)),
                  key=lambda name: int(name[1:]))
    for before, after in pairwise(path):
        if before not in graph[after]:
            graph[after].append(before)
    graph[path[0]].append(path[-1])
    return graph


def reaches_itself(after: dict[str, list[str]]) -> bool:
    """The oracle: is some step its own ancestor? (transitive closure)"""
    ancestors = {name: set(deps) for name, deps in after.items()}
    for k in after:
        for name in after:
            if k in ancestors[name]:
                ancestors[name] |= ancestors[k]
    return any(name in ancestors[name] for name in after)


@given(dags())
def test_a_topological_order_puts_every_step_after_its_dependencies(
    after: dict[str, list[str]],
) -> None:
    order = topological_order(after)

    assert sorted(order) == sorted(after)
    position = {name: index for index, name in enumerate(order)}
    for name, deps in after.items():
        for dep in deps:
            assert position[dep] < position[name]
    assert find_cycle(after) is None


@given(cyclic_graphs())
def test_a_cycle_is_found_and_is_a_real_cycle_of_the_graph(after: dict[str, list[str]]) -> None:
    assert reaches_itself(after)

    cycle = find_cycle(after)

    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for before, following in pairwise(cycle):
        assert before in after[following], f"{before} -> {following} is no edge"
    with pytest.raises(InvalidInput, match=" -> ".join(cycle)):
        topological_order(after)


@given(st.one_of(dags(), cyclic_graphs()))
def test_a_cycle_is_reported_exactly_when_the_graph_has_one(
    after: dict[str, list[str]],
) -> None:
    assert (find_cycle(after) is not None) == reaches_itself(after)


# -- policies and the run's state --------------------------------------------------------------


@pytest.mark.parametrize(("status", "policy", "effect"), [
    (S.SUCCEEDED, P.FAIL_FAST, StepEffect.RELEASE),
    (S.SKIPPED, P.FAIL_DOWNSTREAM, StepEffect.RELEASE),
    (S.DEAD, P.CONTINUE, StepEffect.RELEASE),
    (S.EXPIRED, P.CONTINUE, StepEffect.RELEASE),
    (S.CANCELLED, P.CONTINUE, StepEffect.RELEASE),
    (S.DEAD, P.FAIL_DOWNSTREAM, StepEffect.BLOCK),
    (S.EXPIRED, P.FAIL_DOWNSTREAM, StepEffect.BLOCK),
    (S.CANCELLED, P.FAIL_DOWNSTREAM, StepEffect.BLOCK),
    (S.DEAD, P.FAIL_FAST, StepEffect.FAIL_RUN),
    (S.CANCELLED, P.FAIL_FAST, StepEffect.FAIL_RUN),
    (S.UPSTREAM_FAILED, P.CONTINUE, StepEffect.BLOCK),
    (S.UPSTREAM_FAILED, P.FAIL_FAST, StepEffect.BLOCK),
])
def test_the_end_of_a_step_releases_blocks_or_fails_the_run(
    status: JobStatus, policy: FailurePolicy, effect: StepEffect
) -> None:
    assert effect_of_end(status, policy) is effect


@pytest.mark.parametrize("status", sorted(set(JobStatus) - TERMINAL))
def test_only_an_ended_step_has_an_effect(status: JobStatus) -> None:
    with pytest.raises(ValueError, match="not an end state"):
        effect_of_end(status, P.CONTINUE)


@pytest.mark.parametrize(("counts", "cancel_requested", "expected"), [
    ({S.SUCCEEDED: 3, S.RUNNING: 1}, False, RunStatus.RUNNING),
    ({S.DEAD: 1, S.WAITING: 1}, True, RunStatus.RUNNING),
    ({S.SUCCEEDED: 4}, False, RunStatus.SUCCEEDED),
    ({S.SUCCEEDED: 3, S.SKIPPED: 1, S.QUEUED: 0}, False, RunStatus.SUCCEEDED),
    ({S.SUCCEEDED: 3, S.DEAD: 1}, False, RunStatus.FAILED),
    ({S.SUCCEEDED: 3, S.UPSTREAM_FAILED: 1}, False, RunStatus.FAILED),
    ({S.SUCCEEDED: 1, S.CANCELLED: 3}, True, RunStatus.CANCELLED),
    ({S.SUCCEEDED: 4}, True, RunStatus.CANCELLED),
])
def test_a_runs_state_follows_from_its_steps(
    counts: dict[JobStatus, int], cancel_requested: bool, expected: RunStatus
) -> None:
    assert run_status(counts, cancel_requested) is expected


# -- retry plans --------------------------------------------------------------------------


def states(graph: dict[str, list[str]], ended: dict[str, JobStatus],
           policies: dict[str, FailurePolicy] | None = None) -> list[StepState]:
    return [
        StepState(name, n, ended[name], (policies or {}).get(name, P.FAIL_DOWNSTREAM),
                  tuple(graph[name]))
        for n, name in enumerate(graph, 1)
    ]


CHAINS = {"a": [], "b": ["a"], "c": ["b"], "x": [], "y": ["x"], "d": ["c", "y"]}


def plan(resets: list[Any]) -> dict[str, tuple[JobStatus, int]]:
    return {r.step: (r.status, r.waiting_on) for r in resets}


def test_a_retry_reruns_the_failed_steps_and_their_downstream_that_did_not_succeed() -> None:
    ended = {"a": S.SUCCEEDED, "b": S.DEAD, "c": S.UPSTREAM_FAILED, "x": S.SUCCEEDED,
             "y": S.EXPIRED, "d": S.UPSTREAM_FAILED}

    assert plan(plan_retry(states(CHAINS, ended))) == {
        "b": (S.QUEUED, 0), "c": (S.WAITING, 1), "y": (S.QUEUED, 0), "d": (S.WAITING, 2),
    }


def test_a_retry_of_one_step_leaves_steps_blocked_by_another_failure_alone() -> None:
    ended = {"a": S.SUCCEEDED, "b": S.DEAD, "c": S.UPSTREAM_FAILED, "x": S.SUCCEEDED,
             "y": S.DEAD, "d": S.UPSTREAM_FAILED}

    assert plan(plan_retry(states(CHAINS, ended), "b")) == {
        "b": (S.QUEUED, 0), "c": (S.WAITING, 1),
    }


def test_a_retry_under_continue_reruns_a_failed_descendant_but_not_a_succeeded_one() -> None:
    graph = {"a": [], "b": ["a"], "c": ["b"]}
    ended = {"a": S.DEAD, "b": S.SUCCEEDED, "c": S.DEAD}

    resets = plan(plan_retry(states(graph, ended, {"a": P.CONTINUE}), "a"))

    assert resets == {"a": (S.QUEUED, 0), "c": (S.QUEUED, 0)}


def test_a_retry_counts_dependencies_still_running_outside_the_retry() -> None:
    graph = {"a": [], "b": [], "c": ["a", "b"]}
    ended = {"a": S.DEAD, "b": S.RUNNING, "c": S.WAITING}

    assert plan(plan_retry(states(graph, ended, {"a": P.CONTINUE}))) == {
        "a": (S.QUEUED, 0), "c": (S.WAITING, 2),
    }


def test_a_retry_is_refused_while_a_step_it_would_rerun_is_queued_or_running() -> None:
    graph = {"a": [], "b": ["a"]}
    ended = {"a": S.DEAD, "b": S.RUNNING}
    with pytest.raises(IllegalTransition, match="job 2 cannot go from running to waiting"):
        plan_retry(states(graph, ended, {"a": P.CONTINUE}))


@pytest.mark.parametrize(("step", "field", "reason"), [
    ("zzz", "step", "no step 'zzz'"),
    ("a", "step", "step 'a' succeeded"),
    ("y", "step", "still running"),
    (None, "run", "nothing to retry"),
])
def test_a_retry_that_makes_no_sense_is_refused(step: str | None, field: str,
                                                reason: str) -> None:
    graph = {"a": [], "b": ["a"], "y": []}
    ended = {"a": S.SUCCEEDED, "b": S.SUCCEEDED, "y": S.RUNNING}
    with pytest.raises(InvalidInput, match=reason) as refused:
        plan_retry(states(graph, ended), step)
    assert refused.value.field == field


def test_a_step_that_cannot_run_for_another_failure_is_not_retried_alone() -> None:
    graph = {"a": [], "b": [], "c": ["a", "b"]}
    ended = {"a": S.DEAD, "b": S.DEAD, "c": S.CANCELLED}
    with pytest.raises(InvalidInput, match="nothing can run again"):
        plan_retry(states(graph, ended, {"a": P.FAIL_FAST, "b": P.FAIL_FAST}), "c")


# -- drawing ------------------------------------------------------------------------------


def test_a_diamond_is_drawn_with_the_join_shown_once_and_referred_to_after() -> None:
    labels = {"d": "d (waiting)"}
    assert draw({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}, labels) == [
        "a",
        "├─ b",
        "│  └─ d (waiting)",
        "└─ c",
        "   └─ d ↑",
    ]


def test_a_chain_stays_at_one_depth() -> None:
    chain = {f"s{n}": [f"s{n - 1}"] if n else [] for n in range(1000)}
    lines = draw(chain)
    assert lines[:3] == ["s0", "↓ s1", "↓ s2"]
    assert len(lines) == 1000
    assert max(len(line) for line in lines) <= len("↓ s999")


def test_a_wide_fork_shows_its_first_branches_and_counts_the_rest() -> None:
    middle = [f"m{n}" for n in range(100)]
    lines = draw({"src": [], **{m: ["src"] for m in middle}, "sink": middle}, max_children=3)
    assert lines == [
        "src",
        "├─ m0",
        "│  └─ sink",
        "├─ m1",
        "│  └─ sink ↑",
        "├─ m2",
        "│  └─ sink ↑",
        "└─ … 97 more",
    ]


def test_steps_only_behind_elided_branches_are_counted() -> None:
    graph = {"src": [], "a": ["src"], "b": ["src"], "c": ["src"], "after_c": ["c"]}
    assert draw(graph, max_children=2)[-1] == "(and 1 steps after the elided ones)"


def test_several_roots_are_drawn_one_after_the_other() -> None:
    assert draw({"a": [], "x": [], "b": ["a", "x"]}) == ["a", "└─ b", "x", "└─ b ↑"]


@given(dags())
def test_every_step_is_drawn_once_and_every_edge_is_one_line(
    after: dict[str, list[str]],
) -> None:
    ordered = {name: after[name] for name in topological_order(after)}

    lines = draw(ordered, max_children=100)

    full = [line for line in lines if not line.endswith(" ↑")]
    names = [line.rsplit(" ", 1)[-1] for line in full]
    assert sorted(names) == sorted(after)
    roots = sum(1 for deps in after.values() if not deps)
    assert len(lines) == roots + sum(len(deps) for deps in after.values())
