"""Fair shares between fairness keys, and priority aging: a job's place in the dispatch
order, decided when the job is written, so that a claim stays one indexed scan.

Claims take ready jobs by *rank* (higher first), then *pass* (lower first), then
deadline, due time and id. A job's rank is its priority, minus its queue's aging
steps that had passed by its due time; its pass is its place in its fairness flow.

**Fair shares** (stride scheduling). A job of a namespace that uses fairness belongs to
a flow: its fairness key, or ``''`` without one. A flow of weight ``w`` gives its jobs
passes ``1/w`` apart, starting no earlier than the *frontier*: the lowest pass among
the ready jobs of the same rank (the pass claims are serving now). Under saturation a
claim takes the lowest passes, so each flow gets ``w / sum(w)`` of the claims of a
rank; a flow that was idle starts at the frontier, so it banks no credit. Jobs of one
flow with the same pass are in today's order.

**Aging.** A queue with an aging rate ``r`` (priority levels per second) gives a job
that falls due at ``t`` the rank ``priority - floor(r * (t - AGING_ORIGIN))``. At any
instant, the ranks of the queue's ready jobs differ from their priorities plus
``floor(r * wait)`` by the same amount, so claims order them by aged priority with no
update of any row. A job of priority ``p`` is claimed before every job of priority
``q >= p`` of the queue that falls due more than ``(q - p + 1) / r`` seconds after it.

**A cap** ``c`` is the ceiling aging lifts a job to: a job of priority above ``c`` does
not age (its rank is its priority), and a job at or below it never ranks above ``c``.
Ready jobs are due now or earlier, so the rank of an aged job is at most ``c``, below
every job above the cap: those are claimed first, by priority, as if the queue did not
age; the jobs at or below the cap age among themselves as above.

**Reserved capacity.** A queue can keep a *share* of a claimer's claims for its jobs
ranked *below* a priority (by aged priority, in a queue that ages): when such jobs are
ready, a claim first takes the claims the reserve is owed (`ReserveCredit`), read off
the ready index from that rank down, and the rest as usual.

Example:
    >>> pass_after(frontier=10.0, last_pass=3.0, weight=2.0)
    10.0
    >>> pass_after(frontier=10.0, last_pass=10.0, weight=2.0)
    10.5
    >>> rank_offset(rate=1 / 60, due=AGING_ORIGIN + 600)
    -10
    >>> rank_offset(rate=1 / 60, due=AGING_ORIGIN + 600, priority=9, cap=5)
    0
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taskwheel.errors import InvalidInput
from taskwheel.validators import validate_name, validate_priority, validate_text

AGING_ORIGIN = 1_767_225_600.0  # 2026-01-01T00:00:00Z: ranks stay small numbers
DEFAULT_FLOW = ""  # the flow of a fair namespace's jobs without a fairness key
MAX_WEIGHT = 1_000_000.0
MAX_AGING_RATE = 1_000.0  # priority levels per second
_MAX_KEY = 500
_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0,
            "h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*")


def validate_fairness_key(value: object, field: str = "fairness_key") -> str:
    """A fairness key: a string of 1 to 500 characters of valid Unicode, without control
    characters (``''`` is the default flow)."""
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_KEY:
        raise InvalidInput(field, f"must be a string of 1-{_MAX_KEY} characters, got "
                           f"{value!r}")
    return validate_text(value, field, longest=_MAX_KEY)


def validate_weight(value: object) -> float:
    """A flow's weight: a number > 0 (a share cannot be nothing: pause instead)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and 0 < value <= MAX_WEIGHT
    ):
        raise InvalidInput("weight", f"must be a number > 0 and <= {MAX_WEIGHT:g}, got "
                           f"{value!r}")
    return float(value)


def parse_aging_rate(value: object) -> float:
    """Priority levels per second from ``"N/period"`` (``"1/min"``, ``"2/30s"``,
    ``"0.5/h"``) or a number of levels per second.

    Example:
        >>> parse_aging_rate("1/min") * 60
        1.0
    """
    if isinstance(value, str):
        match = _RATE.fullmatch(value.lower())
        period = _PERIODS.get(match.group(3)) if match else None
        if match is None or period is None:
            raise InvalidInput("rate", f"must be levels per period like '1/min' or "
                               f"'2/30s' (periods: s, min, h, d), got {value!r}")
        count = float(match.group(2)) if match.group(2) else 1.0
        if count <= 0:
            raise InvalidInput("rate", f"the period must be longer than 0, got {value!r}")
        value = float(match.group(1)) / (count * period)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and 0 < value <= MAX_AGING_RATE
    ):
        raise InvalidInput("rate", f"must be more than 0 and at most {MAX_AGING_RATE:g} "
                           f"levels per second, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class FairWeight:
    """The weight of a fairness flow of a namespace (``key`` ``''``: its jobs without a
    key); ``last_pass``, when read from a store, the pass of its last job.

    Example:
        >>> FairWeight("default", "customer:42", 4.0).weight
        4.0
    """

    namespace: str
    key: str
    weight: float = 1.0
    last_pass: float | None = None

    def __post_init__(self) -> None:
        validate_name(self.namespace, "namespace")
        if self.key != DEFAULT_FLOW:
            validate_fairness_key(self.key, "key")
        object.__setattr__(self, "weight", validate_weight(self.weight))

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "key": self.key, "weight": self.weight,
                "last_pass": self.last_pass}


@dataclass(frozen=True, slots=True)
class QueueAging:
    """A queue's aging: its ready jobs gain ``rate`` priority levels per second they
    wait (`parse_aging_rate` reads ``"1/min"``).

    Example:
        >>> QueueAging("default", "reports", parse_aging_rate("6/min")).rate
        0.1
    """

    namespace: str
    queue: str
    rate: float
    cap: int | None = None  # the priority aging lifts a job to at most; None: no ceiling

    def __post_init__(self) -> None:
        validate_name(self.namespace, "namespace")
        validate_name(self.queue, "queue")
        object.__setattr__(self, "rate", parse_aging_rate(self.rate))
        if self.cap is not None:
            object.__setattr__(self, "cap", validate_priority(self.cap, "cap"))

    def rank_offset(self, priority: int, due: float) -> int:
        """The offset of a job of this queue (`rank_offset`)."""
        return rank_offset(self.rate, due, priority=priority, cap=self.cap)

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "queue": self.queue, "rate": self.rate,
                "levels_per_minute": self.rate * 60, "cap": self.cap}


def rank_offset(rate: float | None, due: float, *, priority: int = 0,
                cap: int | None = None) -> int:
    """What aging takes off the priority of a job of a queue aging at ``rate`` that
    falls due at ``due``: the whole aging steps from `AGING_ORIGIN` to then (0 without
    aging). A job due later gets a lower rank, exactly as much lower as the priority
    the earlier ones gained meanwhile. Under a ``cap``, a job of a higher ``priority``
    does not age, and no job's rank is above the cap."""
    if rate is None or (cap is not None and priority > cap):
        return 0
    offset = -math.floor(rate * (due - AGING_ORIGIN))
    return offset if cap is None else min(offset, cap - priority)


def parse_share(value: object) -> float:
    """A share of claims from ``"10%"`` or a fraction (``0.1``): more than 0, less than 1.

    Example:
        >>> parse_share("25%")
        0.25
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise InvalidInput("share", f"must be a percentage like '10%' or a fraction "
                               f"like 0.1, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and 0 < value < 1
    ):
        raise InvalidInput("share", f"must be more than 0 and less than 1 (or 100%), got "
                           f"{value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class QueueReserve:
    """A share of the claims of ``queue`` kept for its jobs ranked below priority
    ``below`` (by aged priority, when the queue ages), whenever such jobs are ready.

    Example:
        >>> QueueReserve("default", "reports", parse_share("10%"), below=5).share
        0.1
    """

    namespace: str
    queue: str
    share: float
    below: int

    def __post_init__(self) -> None:
        validate_name(self.namespace, "namespace")
        validate_name(self.queue, "queue")
        object.__setattr__(self, "share", parse_share(self.share))
        object.__setattr__(self, "below", validate_priority(self.below, "below"))

    def rank_below(self, aging: QueueAging | None, now: float) -> int:
        """The rank under which a ready job of the queue is in the reserved bands at
        ``now``: its aged priority is below `below`."""
        if aging is None:
            return self.below
        return self.below + rank_offset(aging.rate, now)

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "queue": self.queue, "share": self.share,
                "below": self.below}


class ReserveCredit:
    """What one claimer's claims owe each queue's reserve.

    Every job a claimer takes from a queue with a reserve of share ``s`` adds ``s`` to
    what it owes the reserved bands, and every job of those bands it takes pays one
    back. A claim first asks the bands for the whole jobs it owes (counting the ones
    the claim itself adds); bands that had fewer ready jobs than asked are owed
    nothing more: they bank no credit while they are idle.

    Example:
        >>> credit = ReserveCredit()
        >>> [credit.asked(("ns", "q"), 0.1, limit=1) for _ in range(3)]
        [0, 0, 0]
        >>> for _ in range(9):
        ...     credit.settle(("ns", "q"), 0.1, taken=1, reserved=0, asked=0)
        >>> credit.asked(("ns", "q"), 0.1, limit=1)
        1
    """

    def __init__(self) -> None:
        self._owed: dict[tuple[str, str], float] = {}

    def asked(self, queue: tuple[str, str], share: float, limit: int) -> int:
        """How many of a claim of ``limit`` to take from the reserved bands first."""
        return min(limit, math.floor(self._owed.get(queue, 0.0) + share * limit + 1e-9))

    def settle(self, queue: tuple[str, str], share: float, *, taken: int, reserved: int,
               asked: int) -> None:
        """After a claim that took ``taken`` jobs of the queue, ``reserved`` of them of
        the reserved bands, having asked the bands for ``asked``."""
        owed = self._owed.get(queue, 0.0) + share * taken - reserved
        if reserved < asked:  # the bands ran dry
            owed = 0.0
        self._owed[queue] = max(0.0, owed)


def pass_after(frontier: float, last_pass: float, weight: float) -> float:
    """The pass of a flow's next job: ``1/weight`` after its last, and never before the
    frontier (a flow that was idle banks no credit)."""
    return max(frontier, last_pass + 1.0 / weight)


@dataclass(frozen=True, slots=True)
class Placed:
    """Where the job at ``index`` of a batch goes in the dispatch order."""

    index: int
    fairness_key: str | None
    rank_offset: int
    fair_pass: float


@dataclass(slots=True)
class Flow:
    """A flow's state during an enqueue: its weight and the pass of its last job."""

    weight: float
    last_pass: float


@dataclass(frozen=True, slots=True)
class Request:
    """What placing one job needs to know of it."""

    key: str | None  # its fairness key
    queue: str
    priority: int
    due: float
    deadline: float | None = None


def place_jobs(
    requests: Sequence[Request],
    *,
    fair: bool,
    aging: Mapping[str, QueueAging],
    flows: Mapping[str, Flow],
    frontier: Mapping[int, float],
    ceiling: float,
) -> list[Placed]:
    """The places of a namespace's batch, in its order. ``fair``: the namespace uses
    fairness (every job then gets a pass, those without a key in the default flow);
    ``aging``: by queue; ``flows``: the state of the batch's flows, updated here
    (the caller saves their last passes); ``frontier``: the lowest pass of the ready
    jobs of each rank; ``ceiling``: the highest last pass of the namespace's flows, the
    frontier of a rank without ready jobs (everyone starts there, equal).

    Example:
        >>> flows = {"a": Flow(1.0, 0.0), "b": Flow(2.0, 0.0)}
        >>> placed = place_jobs([Request("a", "q", 0, 0.0), Request("b", "q", 0, 0.0),
        ...                      Request("b", "q", 0, 0.0)], fair=True, aging={},
        ...                     flows=flows, frontier={}, ceiling=5.0)
        >>> [p.fair_pass for p in placed]
        [5.0, 5.0, 5.5]
        >>> flows["b"].last_pass
        5.5
    """
    placed = []
    # A flow's jobs of one batch take its passes in today's order (priority, deadline,
    # due time, place in the batch); a later batch's take the passes after them.
    for index, request in sorted(enumerate(requests), key=_todays_order):
        queue_aging = aging.get(request.queue)
        offset = 0 if queue_aging is None else queue_aging.rank_offset(request.priority,
                                                                        request.due)
        fair_pass = 0.0
        if fair:
            flow = flows[DEFAULT_FLOW if request.key is None else request.key]
            start = frontier.get(request.priority + offset, ceiling)
            fair_pass = flow.last_pass = pass_after(start, flow.last_pass, flow.weight)
        placed.append(Placed(index, request.key, offset, fair_pass))
    placed.sort(key=lambda place: place.index)
    return placed


def _todays_order(item: tuple[int, Request]) -> tuple[int, float, float, int]:
    index, request = item
    deadline = math.inf if request.deadline is None else request.deadline
    return (-request.priority, deadline, request.due, index)


def flow_keys(keys: Iterable[str | None]) -> list[str]:
    """The flows of a fair namespace's batch, sorted (two enqueues lock them in one
    order)."""
    return sorted({DEFAULT_FLOW if key is None else key for key in keys})


@dataclass(frozen=True, slots=True)
class NamespaceWeight:
    """A namespace's weight: its share of the claims of a worker that serves it with
    other namespaces, against their weights (a namespace without one weighs 1).

    Example:
        >>> NamespaceWeight("tenant-a", 3).weight
        3.0
    """

    namespace: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        validate_name(self.namespace, "namespace")
        object.__setattr__(self, "weight", validate_weight(self.weight))

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "weight": self.weight}


class NamespaceStride:
    """Stride scheduling between the namespaces of one claimer's claims.

    Each namespace has a *start*; a claim of several namespaces gives the ``n``-th
    ready job of a namespace of weight ``w`` (in its own dispatch order) the place
    ``start + n / w`` and takes the lowest places. After the claim a namespace's start
    moves past the jobs taken from it, and a namespace that had nothing to take is
    lifted to one stride before the last place taken: it starts level with the others,
    banking no credit for the claims it did not use.

    Example:
        >>> stride = NamespaceStride()
        >>> weights = {"a": 1.0, "b": 2.0}
        >>> stride.starts(["a", "b"])
        [0.0, 0.0]
        >>> stride.taken(weights, {"b": 2})  # places b:0.5, b:1.0 (a:1.0 lost the tie)
        >>> stride.starts(["a", "b"])
        [0.0, 1.0]
    """

    def __init__(self) -> None:
        self._starts: dict[str, float] = {}

    def starts(self, namespaces: Sequence[str]) -> list[float]:
        return [self._starts.get(namespace, 0.0) for namespace in namespaces]

    def taken(self, weights: Mapping[str, float], counts: Mapping[str, int]) -> None:
        """Move the starts after a claim that took ``counts`` jobs by namespace, of the
        namespaces of ``weights``."""
        ends = {namespace: self._starts.get(namespace, 0.0) + count / weights[namespace]
                for namespace, count in counts.items() if count}
        if not ends:
            return
        last = max(ends.values())
        for namespace, weight in weights.items():
            start = ends.get(namespace, self._starts.get(namespace, 0.0))
            self._starts[namespace] = max(start, last - 1.0 / weight)


def place_order(starts: Sequence[float], weights: Sequence[float],
                ready: Sequence[int], limit: int) -> list[int]:
    """How many jobs a claim of ``limit`` takes from each namespace with ``ready``
    jobs, by the places `NamespaceStride` gives them (ties: the heavier namespace,
    then the first named) — what the stores' claim statements compute.

    Example:
        >>> place_order([0.0, 0.0], [1.0, 2.0], [10, 10], 3)
        [1, 2]
    """
    places = sorted((start + n / weight, -weight, i)
                    for i, (start, weight, count) in enumerate(
                        zip(starts, weights, ready, strict=True))
                    for n in range(1, min(count, limit) + 1))
    taken = [0] * len(starts)
    for _, _, i in places[:limit]:
        taken[i] += 1
    return taken
