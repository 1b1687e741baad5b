"""The scheduler process: fires schedules from a timing wheel and maintains the store."""

from taskwheel.scheduler.partitions import LEASE, partition_lease, partition_of
from taskwheel.scheduler.scheduler import Scheduler, SchedulerSettings

__all__ = ["LEASE", "Scheduler", "SchedulerSettings", "partition_lease", "partition_of"]
