"""Schedules: create or update by name, list with next fire times, show, pause,
resume, trigger, remove, and preview fire times (DST changes marked)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from taskwheel.keys import Role
from taskwheel.schedules import build_trigger
from taskwheel.server.auth import Access, namespace_access
from taskwheel.server.models import (
    FiredOut,
    FireOut,
    JobOut,
    Preview,
    PreviewRequest,
    ScheduleDetail,
    ScheduleList,
    ScheduleOut,
    ScheduleRequest,
    ScheduleWritten,
)
from taskwheel.server.problems import invalid_input
from taskwheel.triggers import Trigger, upcoming
from taskwheel.workflows import Workflow

router = APIRouter(prefix="/api/v1/namespaces/{namespace}/schedules", tags=["schedules"])

Reader = Annotated[Access, Depends(namespace_access(Role.READ))]
Operator = Annotated[Access, Depends(namespace_access(Role.OPERATE))]
Admin = Annotated[Access, Depends(namespace_access(Role.ADMIN))]


@router.get("", response_model=ScheduleList, summary="Schedules with their next fire times")
def list_schedules(access: Reader) -> ScheduleList:
    return ScheduleList(schedules=[ScheduleOut.of(s) for s in access.client.list_schedules()])


@router.post("/preview", response_model=Preview, summary="Preview a trigger's fire times")
def preview_trigger(access: Reader, body: PreviewRequest) -> Preview:
    trigger = build_trigger(cron=body.cron, every=body.every, at=body.at,
                            timezone=body.timezone, dst_gap=body.dst_gap.value,
                            dst_fold=body.dst_fold.value)
    return _preview(trigger, body.after, body.count)


@router.put("/{name}", response_model=ScheduleWritten, summary="Create or update a schedule")
def upsert_schedule(access: Admin, name: str, body: ScheduleRequest) -> ScheduleWritten:
    """Create the schedule ``name``, or update it (a paused one stays paused); checked
    against the app's tasks first, as ``taskwheel schedules add`` is."""
    job_options = {key: value for key, value in (
        ("queue", body.queue), ("priority", body.priority), ("timeout", body.timeout),
        ("max_attempts", body.max_attempts), ("deadline", body.deadline),
    ) if value is not None}
    definition = access.state.app.define_schedule(
        name, body.task,
        workflow=None if body.workflow is None else Workflow.from_dict(body.workflow),
        cron=body.cron, every=body.every, at=body.at, timezone=body.timezone,
        args=body.args, kwargs=body.kwargs, misfire=body.misfire.value,
        max_catch_up=body.max_catch_up, misfire_grace=body.misfire_grace,
        overlap=body.overlap.value, dst_gap=body.dst_gap.value, dst_fold=body.dst_fold.value,
        jitter=body.jitter, start=body.start, end=body.end, job_options=job_options,
        namespace=access.namespace,
    )
    schedule, changed = access.client.upsert_schedule(definition)
    return ScheduleWritten(schedule=ScheduleOut.of(schedule), changed=changed)


@router.get("/{name}", response_model=ScheduleDetail, summary="A schedule and its recent jobs")
def show_schedule(
    access: Reader, name: str, jobs: Annotated[int, Query(ge=0, le=100)] = 10
) -> ScheduleDetail:
    schedule = access.client.get_schedule(name)
    recent = access.client.schedule_jobs(schedule, jobs) if jobs else []
    return ScheduleDetail(**ScheduleOut.of(schedule).model_dump(),
                          jobs=[JobOut.of(job) for job in recent])


@router.delete("/{name}", status_code=204, summary="Remove a schedule (its jobs stay)")
def remove_schedule(access: Admin, name: str) -> None:
    access.client.remove_schedule(name)


@router.post("/{name}/pause", response_model=ScheduleOut, summary="Pause a schedule")
def pause_schedule(access: Operator, name: str) -> ScheduleOut:
    return ScheduleOut.of(access.client.pause_schedule(name))


@router.post("/{name}/resume", response_model=ScheduleOut, summary="Resume a schedule")
def resume_schedule(access: Operator, name: str) -> ScheduleOut:
    """Fire it again; times missed while paused go through its misfire policy."""
    return ScheduleOut.of(access.client.resume_schedule(name))


@router.post("/{name}/trigger", response_model=FiredOut, summary="Fire a schedule now, once")
def trigger_schedule(access: Operator, name: str) -> FiredOut:
    fired = access.client.trigger_schedule(name)
    return FiredOut(schedule=name, result=fired.result, job_id=fired.job_id,
                    workflow_run_id=fired.workflow_run_id)


@router.get("/{name}/preview", response_model=Preview, summary="A schedule's next fire times")
def preview_schedule(
    access: Reader, name: str, count: Annotated[int, Query(ge=1, le=10_000)] = 10,
    after: datetime | None = None,
) -> Preview:
    return _preview(access.client.get_schedule(name).definition.trigger, after, count)


def _preview(trigger: Trigger, after: datetime | None, count: int) -> Preview:
    start = datetime.now(UTC) if after is None else after
    if start.tzinfo is None:
        raise invalid_input("after", f"{start.isoformat()} has no timezone; add one")
    fires = upcoming(trigger, start, count)
    return Preview(fires=[FireOut(utc=f.at, local=f.local, dst=f.dst) for f in fires])
