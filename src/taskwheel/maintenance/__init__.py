"""Background duties, each a small loop object, run by the holder of the maintenance lease.

`Maintenance` keeps the ``maintenance`` lease and runs the duties while it holds it:
`Promoter` (due delayed jobs become ready, at the instant the next one is due),
`Rescuer` (jobs of vanished workers), `Expirer` (missed deadlines), `Releaser`
(``queue_one`` jobs whose predecessor ended), `Pruner` (retention, on its own slower
interval), `Reopener` (pauses whose time is up) and `Alerter` (alert rules judged,
their deliveries sent). Schedulers and workers both run one, so exactly one process of
a namespace maintains at a time, whichever roles are deployed.
"""

from taskwheel.maintenance.alerter import Alerter
from taskwheel.maintenance.duty import Duty
from taskwheel.maintenance.expirer import Expirer
from taskwheel.maintenance.maintenance import LEASE, Maintenance, MaintenanceSettings
from taskwheel.maintenance.promoter import Promoter
from taskwheel.maintenance.pruner import Pruner
from taskwheel.maintenance.releaser import Releaser
from taskwheel.maintenance.reopener import Reopener
from taskwheel.maintenance.rescuer import Rescuer

__all__ = [
    "LEASE",
    "Alerter",
    "Duty",
    "Expirer",
    "Maintenance",
    "MaintenanceSettings",
    "Promoter",
    "Pruner",
    "Releaser",
    "Reopener",
    "Rescuer",
]
