"""The scheduler process: fires schedules from a timing wheel and maintains the store."""

from taskwheel.scheduler.scheduler import LEASE, Scheduler, SchedulerSettings

__all__ = ["LEASE", "Scheduler", "SchedulerSettings"]
