"""The namespace-scoped client: every operation on one namespace's jobs, schedules and
workflow runs, over a store.

A `Client` holds no task registry and no state of its own beyond its store and
namespace: the command line builds one per command, an HTTP server one per request,
and `App` keeps one for its own namespace (`App.client`). What needs the tasks
(checking a job's arguments, compiling a workflow, declaring a schedule) happens
before, in `Task.prepare`, `Workflow.compile` and `App.schedule`; the client takes the
validated results.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from taskwheel.errors import InvalidInput, WorkflowRunEnded
from taskwheel.handles import JobHandle, WorkflowRunHandle
from taskwheel.jobs import Attempt, Job, JobFilter, NewJob, Stats
from taskwheel.lifecycle import JobStatus
from taskwheel.quotas import Quota
from taskwheel.schedules import Fired, Schedule, ScheduleDefinition
from taskwheel.stores.base import Store
from taskwheel.validators import validate_id, validate_limit, validate_name
from taskwheel.webhooks import NewWebhook, Webhook
from taskwheel.workflows import RunStatus, WorkflowRun, WorkflowRunFilter, WorkflowSpec


class Client:
    """One namespace of a store: enqueue prepared jobs; read, cancel and retry jobs;
    the dead-letter queue; schedules; workflow runs; statistics.

    Args:
        store: an open store whose schema is current (see `App.store`).
        namespace: the tenant every operation acts in; nothing crosses namespaces.

    Example:
        >>> client = Client(store, "tenant-a")
        >>> [handle] = client.enqueue_many([send.prepare("a@b.c")])
        >>> client.job(handle.id).cancel().status
        <JobStatus.CANCELLED: 'cancelled'>
        >>> client.list_jobs(JobFilter(status=JobStatus.DEAD))
        []
    """

    def __init__(self, store: Store, namespace: str = "default") -> None:
        self.store = store
        self.namespace = validate_name(namespace, "namespace")

    def __repr__(self) -> str:
        return f"<Client namespace={self.namespace}>"

    # -- jobs -------------------------------------------------------------------------------

    def enqueue_many(self, requests: Iterable[NewJob]) -> list[JobHandle]:
        """Create jobs from prepared requests (`Task.prepare`) in one transaction (all
        or none); a request of another namespace is refused, and a batch over the
        namespace's quota raises `QuotaExceeded`: nothing is written. A request whose
        idempotency key is taken gets the job holding it, its handle marked
        ``existing``."""
        batch = list(requests)
        for request in batch:
            if not isinstance(request, NewJob):
                raise InvalidInput(
                    "requests", f"expected Task.prepare(...) results, got {request!r}"
                )
            self._check_namespace(request.namespace, "request")
        answer = self.store.enqueue(batch)
        return [JobHandle(self.store, self.namespace, job, existing=existing)
                for job, existing in zip(answer, answer.existing, strict=True)]

    def job(self, job_id: int) -> JobHandle:
        """A handle on an existing job (`JobNotFound` if the namespace has none)."""
        return JobHandle(self.store, self.namespace,
                         self.store.get_job(self.namespace, validate_id(job_id, "job_id")))

    def get_jobs(self, job_ids: Sequence[int]) -> list[Job]:
        """The jobs of ``job_ids`` that exist, in one read."""
        return self.store.get_jobs(self.namespace,
                                   [validate_id(job_id, "job_ids") for job_id in job_ids])

    def list_jobs(self, where: JobFilter | None = None) -> list[Job]:
        """Jobs, newest first."""
        where = where or JobFilter()
        validate_limit(where.limit)
        for field_name in ("queue", "task"):
            if getattr(where, field_name) is not None:
                validate_name(getattr(where, field_name), field_name)
        return self.store.list_jobs(self.namespace, where)

    def attempts(self, job_id: int) -> list[Attempt]:
        """The history of a job's attempts, oldest first."""
        return self.store.list_attempts(self.namespace, validate_id(job_id, "job_id"))

    def cancel_job(self, job_id: int) -> Job:
        """Cancel a waiting job at once, or ask the worker running it to stop."""
        return self.store.cancel_job(self.namespace, validate_id(job_id, "job_id"))

    def retry_job(self, job_id: int) -> Job:
        """Queue a finished job again with a fresh set of attempts."""
        return self.store.retry_job(self.namespace, validate_id(job_id, "job_id"))

    # -- dead-letter queue ------------------------------------------------------------------

    def list_dead(
        self, *, queue: str | None = None, task: str | None = None, limit: int = 100
    ) -> list[Job]:
        """Dead jobs (their attempts ran out), newest first."""
        return self.list_jobs(JobFilter(status=JobStatus.DEAD, queue=queue, task=task,
                                        limit=limit))

    def replay_dead(self, job_ids: Sequence[int] | None) -> list[int]:
        """Queue dead jobs again with a fresh set of attempts: those of ``job_ids``, or
        every dead job when it is None. The ids replayed."""
        if job_ids is not None:
            job_ids = [validate_id(job_id, "job_ids") for job_id in job_ids]
        return self.store.replay_dead(self.namespace, job_ids)

    def purge_dead(self, job_ids: Sequence[int] | None = None) -> int:
        """Delete the dead jobs (those of ``job_ids`` that are dead, if given) and their
        attempts for good; how many."""
        if job_ids is not None:
            job_ids = [validate_id(job_id, "job_ids") for job_id in job_ids]
        return self.store.purge_dead(self.namespace, job_ids)

    # -- schedules -------------------------------------------------------------------------

    def upsert_schedule(
        self, definition: ScheduleDefinition, *, declared_by: str | None = None
    ) -> tuple[Schedule, bool]:
        """Create the schedule, or update the one of its name (a paused one stays
        paused); the schedule, and whether anything changed. ``declared_by``: the app
        that declares it in code (see `App.sync_schedules`); None, written by hand."""
        self._check_namespace(definition.namespace, "schedule")
        if declared_by is not None:
            validate_name(declared_by, "declared_by")
        return self.store.upsert_schedule(definition, declared_by=declared_by)

    def list_schedules(self) -> list[Schedule]:
        return self.store.list_schedules(self.namespace)

    def get_schedule(self, name: str) -> Schedule:
        """The schedule called ``name`` (`ScheduleNotFound` if there is none)."""
        return self.store.get_schedule(self.namespace, validate_name(name, "name"))

    def schedule_jobs(self, schedule: Schedule, limit: int = 10) -> list[Job]:
        """The most recent jobs ``schedule`` created (none for a workflow schedule,
        whose fires create runs)."""
        template = schedule.definition.job
        if template is None:
            return []
        jobs = self.list_jobs(JobFilter(task=template.task, limit=500))
        return [job for job in jobs if job.schedule_id == schedule.id][:limit]

    def pause_schedule(self, name: str) -> Schedule:
        """Stop firing ``name`` until resumed."""
        return self.store.set_schedule_paused(self.namespace, validate_name(name, "name"), True)

    def resume_schedule(self, name: str) -> Schedule:
        """Fire ``name`` again; times missed while paused go through its misfire policy."""
        return self.store.set_schedule_paused(self.namespace, validate_name(name, "name"), False)

    def remove_schedule(self, name: str) -> None:
        """Delete ``name``; the jobs it created stay."""
        self.store.remove_schedule(self.namespace, validate_name(name, "name"))

    def trigger_schedule(self, name: str) -> Fired:
        """Fire ``name`` now, once, outside its timing."""
        return self.store.trigger_schedule(self.namespace, validate_name(name, "name"))

    # -- workflows --------------------------------------------------------------------------

    def submit(self, spec: WorkflowSpec) -> WorkflowRunHandle:
        """Start a run of a compiled workflow (`Workflow.compile`) in one transaction."""
        self._check_namespace(spec.namespace, "workflow")
        return WorkflowRunHandle(self.store, self.namespace, self.store.submit_workflow(spec))

    def workflow_run(self, run_id: int) -> WorkflowRunHandle:
        """A handle on an existing run (`WorkflowRunNotFound` if the namespace has none)."""
        return WorkflowRunHandle(
            self.store, self.namespace,
            self.store.get_workflow_run(self.namespace, validate_id(run_id, "run_id")),
        )

    def list_workflow_runs(self, where: WorkflowRunFilter | None = None) -> list[WorkflowRun]:
        """Runs, newest first, with their steps counted by state."""
        where = where or WorkflowRunFilter()
        validate_limit(where.limit)
        if where.name is not None:
            validate_name(where.name, "name")
        return self.store.list_workflow_runs(self.namespace, where)

    def retry_workflow_run(self, run_id: int, step: str | None = None) -> WorkflowRun:
        """Run the failed steps (or ``step``) again, with every step after them that
        did not succeed."""
        return self.store.retry_workflow_run(self.namespace, validate_id(run_id, "run_id"), step)

    def cancel_workflow_run(self, run_id: int) -> WorkflowRun:
        """Cancel the steps not yet finished; running ones are asked to stop.
        `WorkflowRunEnded` if the run had already ended (as cancelling a finished job
        is refused)."""
        run = self.store.get_workflow_run(self.namespace, validate_id(run_id, "run_id"))
        if run.status is not RunStatus.RUNNING:
            raise WorkflowRunEnded(run.id, run.status.value)
        return self.store.cancel_workflow_run(self.namespace, run_id)

    # -- statistics -------------------------------------------------------------------------

    def stats(self) -> Stats:
        """Per queue: jobs by state, ready jobs by priority, the oldest ready job's age;
        and the workers."""
        return self.store.stats(self.namespace)

    # -- quota ------------------------------------------------------------------------------

    def quota(self) -> Quota:
        """The namespace's limits (none when none were set)."""
        return self.store.get_quota(self.namespace)

    def set_quota(
        self, *, max_queued: int | None = None, max_enqueue_rate: float | None = None,
        max_active_schedules: int | None = None,
    ) -> Quota:
        """Set the namespace's limits; None is no limit (see `Quota`)."""
        return self.store.set_quota(Quota(
            self.namespace, max_queued=max_queued, max_enqueue_rate=max_enqueue_rate,
            max_active_schedules=max_active_schedules))

    # -- webhooks ---------------------------------------------------------------------------

    def define_webhook(self, hook: NewWebhook) -> Webhook:
        """Create or replace a webhook (`taskwheel.webhooks.new_webhook`): requests to
        ``POST /hooks/{namespace}/{name}`` signed with its secret become jobs of its
        task."""
        self._check_namespace(hook.namespace, "webhook")
        return self.store.define_webhook(hook)

    def webhooks(self) -> list[Webhook]:
        return self.store.list_webhooks(self.namespace)

    def webhook(self, name: str) -> Webhook:
        """The webhook called ``name`` (`WebhookNotFound` if there is none)."""
        return self.store.get_webhook(self.namespace, validate_name(name, "name"))

    def remove_webhook(self, name: str) -> None:
        self.store.remove_webhook(self.namespace, validate_name(name, "name"))

    def _check_namespace(self, namespace: str, what: str) -> None:
        if namespace != self.namespace:
            raise InvalidInput("namespace", f"{what} for {namespace!r} in namespace "
                               f"{self.namespace!r}")
