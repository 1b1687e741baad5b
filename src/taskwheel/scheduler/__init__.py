"""The scheduler process: fires schedules from a timing wheel, and maintains the store
while it holds the maintenance lease."""

from taskwheel.maintenance import LEASE
from taskwheel.scheduler.partitions import partition_lease, partition_of
from taskwheel.scheduler.scheduler import Scheduler
from taskwheel.scheduler.settings import SchedulerSettings

__all__ = ["LEASE", "Scheduler", "SchedulerSettings", "partition_lease", "partition_of"]
