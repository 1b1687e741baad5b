"""Workflows: DAGs of jobs with dependencies, parallel steps and failure policies.

A `Workflow` is what a user declares: steps (a task with its arguments), each after
some others. `Workflow.compile` validates it against an app's tasks into a
`WorkflowSpec`, the JSON-able form stores and schedules keep; a store turns a spec into
one run: a job per step, the steps without dependencies queued, the others `waiting`.
A step becomes ready in the transaction that ends its last dependency; independent
steps run in parallel on any workers.

Failure policies (per run, overridable per step) say what a step's failure does. A
step fails when its job ends ``dead`` (its own retries used up), ``expired`` or
``cancelled``:

- ``fail_downstream`` (default): its transitive dependents become ``upstream_failed``;
  other branches run to the end.
- ``fail_fast``: every step of the run not yet finished is cancelled (running ones
  through the usual cancellation: ``ctx.cancelled``, then a kill).
- ``continue``: its dependents run anyway and see the failure in ``ctx.upstream``.

A run is ``running`` while any step is unfinished; then ``cancelled`` if someone
cancelled it, ``failed`` if any step did not succeed, else ``succeeded``.

Everything here is pure (no I/O): the definitions, validation, the topological order
and cycles, the policy decisions, the plan of a retry and the text drawing.
"""

from __future__ import annotations

from taskwheel.workflows.definition import (
    MAX_STEPS,
    STEP_OPTIONS,
    Step,
    StepSpec,
    Workflow,
    WorkflowSpec,
)
from taskwheel.workflows.drawing import (
    draw,
)
from taskwheel.workflows.graph import (
    dependents_of,
    find_cycle,
    topological_order,
)
from taskwheel.workflows.policies import (
    FAILURE,
    SUCCESS,
    FailurePolicy,
    Reset,
    RunStatus,
    StepEffect,
    StepState,
    effect_of_end,
    plan_retry,
    run_status,
)
from taskwheel.workflows.records import (
    StepOutcome,
    WorkflowRun,
    WorkflowRunFilter,
    WorkflowStep,
)

__all__ = [
    "FAILURE",
    "MAX_STEPS",
    "STEP_OPTIONS",
    "SUCCESS",
    "FailurePolicy",
    "Reset",
    "RunStatus",
    "Step",
    "StepEffect",
    "StepOutcome",
    "StepSpec",
    "StepState",
    "Workflow",
    "WorkflowRun",
    "WorkflowRunFilter",
    "WorkflowSpec",
    "WorkflowStep",
    "dependents_of",
    "draw",
    "effect_of_end",
    "find_cycle",
    "plan_retry",
    "run_status",
    "topological_order",
]
