"""What the end of a step does to its run under each failure policy, the state of a
run, and the plan of a retry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from taskwheel.errors import IllegalTransition, InvalidInput
from taskwheel.lifecycle import TERMINAL, JobStatus, check_transition
from taskwheel.workflows.graph import dependents_of, listing, topological_order

S = JobStatus
SUCCESS: frozenset[JobStatus] = frozenset({S.SUCCEEDED, S.SKIPPED})
FAILURE: frozenset[JobStatus] = TERMINAL - SUCCESS  # dead, expired, cancelled, upstream_failed


class FailurePolicy(StrEnum):
    FAIL_FAST = "fail_fast"
    FAIL_DOWNSTREAM = "fail_downstream"
    CONTINUE = "continue"


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# -- policies ---------------------------------------------------------------------------------


class StepEffect(StrEnum):
    """What the end of a step does to the rest of its run."""

    RELEASE = "release"  # its dependents wait for one dependency fewer
    BLOCK = "block"  # its transitive dependents become upstream_failed
    FAIL_RUN = "fail_run"  # every unfinished step of the run is cancelled


def effect_of_end(status: JobStatus, policy: FailurePolicy) -> StepEffect:
    """What a step that ended in ``status`` (a terminal one) does under its policy.

    ``upstream_failed`` always blocks: a step that never ran has nothing to hand on,
    and its dependents are already blocked with it.
    """
    if status not in TERMINAL:
        raise ValueError(f"{status.value} is not an end state")
    if status in SUCCESS:
        return StepEffect.RELEASE
    if status is S.UPSTREAM_FAILED:
        return StepEffect.BLOCK
    return {
        FailurePolicy.CONTINUE: StepEffect.RELEASE,
        FailurePolicy.FAIL_DOWNSTREAM: StepEffect.BLOCK,
        FailurePolicy.FAIL_FAST: StepEffect.FAIL_RUN,
    }[policy]


def run_status(counts: Mapping[JobStatus, int], cancel_requested: bool) -> RunStatus:
    """A run's state from how many of its steps are in each state."""
    present = {status for status, count in counts.items() if count}
    if present - TERMINAL:
        return RunStatus.RUNNING
    if cancel_requested:
        return RunStatus.CANCELLED
    if present & FAILURE:
        return RunStatus.FAILED
    return RunStatus.SUCCEEDED


@dataclass(frozen=True, slots=True)
class StepState:
    """A step of a stored run, as a retry is planned from it."""

    name: str
    job_id: int
    status: JobStatus
    on_failure: FailurePolicy
    after: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reset:
    """A step a retry runs again: it becomes ``status`` (queued or waiting) and waits
    for ``waiting_on`` dependencies."""

    step: str
    job_id: int
    status: JobStatus
    waiting_on: int


def plan_retry(steps: Sequence[StepState], step: str | None = None) -> list[Reset]:
    """Which steps a retry of a run runs again: the failed steps (or ``step``) and every
    step downstream of them that did not succeed; never a step that succeeded.

    A step whose other dependency failed and is not run again stays as it is (it could
    not run). A step downstream that is still queued or running is refused
    (`IllegalTransition`): wait for it or cancel the run first.

    Example:
        extract (succeeded) -> transform (dead) -> load (upstream_failed):
        transform is queued, load waits for it; extract is left alone.
    """
    by_name = {s.name: s for s in steps}
    if step is not None:
        chosen = by_name.get(step)
        if chosen is None:
            raise InvalidInput("step", f"the run has no step {step!r} (steps: "
                               f"{listing(by_name)})")
        if chosen.status not in TERMINAL:
            raise InvalidInput("step", f"step {step!r} is still {chosen.status.value}; "
                               "only a finished step is retried")
        if chosen.status in SUCCESS:
            raise InvalidInput("step", f"step {step!r} {chosen.status.value}; only steps "
                               "that did not succeed are retried")
        roots = [step]
    else:
        roots = [s.name for s in steps if s.status in FAILURE]
        if not roots:
            raise InvalidInput("run", "nothing to retry: no step of the run failed")
    after = {s.name: s.after for s in steps}
    dependents = dependents_of(after)
    chosen_set: set[str] = set()
    frontier = list(roots)
    reached: set[str] = set(roots)
    while frontier:
        name = frontier.pop()
        if by_name[name].status not in SUCCESS:
            chosen_set.add(name)
        for dependent in dependents[name]:
            if dependent not in reached:
                reached.add(dependent)
                frontier.append(dependent)
    resets: list[Reset] = []
    for name in topological_order(after):
        if name not in chosen_set:
            continue
        state = by_name[name]
        if state.status in (S.QUEUED, S.SCHEDULED, S.RUNNING):
            raise IllegalTransition(state.job_id, state.status.value, S.WAITING.value)
        waiting_on = 0
        blocked = False
        for dependency in dict.fromkeys(state.after):
            dep = by_name[dependency]
            if dependency in chosen_set or dep.status not in TERMINAL:
                waiting_on += 1
            elif effect_of_end(dep.status, dep.on_failure) is not StepEffect.RELEASE:
                blocked = True
        if blocked:
            chosen_set.discard(name)
            continue
        target = S.WAITING if waiting_on else S.QUEUED
        if state.status is not target:
            check_transition(state.status, target, state.job_id)
        resets.append(Reset(name, state.job_id, target, waiting_on))
    if not resets:
        raise InvalidInput("step" if step is not None else "run", "nothing can run again: "
                           "each step to retry depends on a failed step that is not retried")
    return resets
