"""The dependency graph of a workflow: topological order, dependents, cycles."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from taskwheel.errors import InvalidInput

# -- the graph --------------------------------------------------------------------------------


def topological_order(after: Mapping[str, Sequence[str]]) -> list[str]:
    """The steps in an order where each comes after its dependencies (ties keep the
    order of ``after``), or `InvalidInput` naming a cycle. Every name in the values
    must be a key.

    Example:
        >>> topological_order({"load": ["transform"], "transform": ["extract"], "extract": []})
        ['extract', 'transform', 'load']
    """
    order = _peel(after)
    if len(order) != len(after):
        cycle = find_cycle(after)
        assert cycle is not None
        raise InvalidInput("after", "the steps form a cycle: " + " -> ".join(cycle))
    return order


def dependents_of(after: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Each step's direct dependents, in the order of ``after``."""
    dependents: dict[str, list[str]] = {name: [] for name in after}
    for name, deps in after.items():
        for dependency in dict.fromkeys(deps):
            dependents[dependency].append(name)
    return dependents


def find_cycle(after: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle of the graph as the steps run (``[a, b, c, a]``: b after a, c after b,
    a after c), starting at its earliest step in the order of ``after``; None if the
    graph has no cycle."""
    peeled = set(_peel(after))
    remaining = {name: [d for d in deps if d not in peeled]
                 for name, deps in after.items() if name not in peeled}
    if not remaining:
        return None
    # Every step left is on a cycle or behind one, so each has a dependency left:
    # walking dependencies backwards must come round.
    walk: list[str] = []
    seen: dict[str, int] = {}
    node = next(iter(remaining))
    while node not in seen:
        seen[node] = len(walk)
        walk.append(node)
        node = remaining[node][0]
    cycle = walk[seen[node]:][::-1]  # the walk went against the edges
    position = {name: index for index, name in enumerate(after)}
    start = min(range(len(cycle)), key=lambda i: position[cycle[i]])
    cycle = cycle[start:] + cycle[:start]
    return [*cycle, cycle[0]]


def _peel(after: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's algorithm: steps in dependency order, as long as some step has all its
    dependencies before it; the steps on or behind a cycle are left out. O(V + E)."""
    waiting = {name: len(set(deps)) for name, deps in after.items()}
    dependents = dependents_of(after)
    ready = deque(name for name, count in waiting.items() if count == 0)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for dependent in dependents[name]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    return order


def listing(names: Iterable[str], limit: int = 10) -> str:
    """Names for an error message: the first ``limit``, then how many in all."""
    ordered = list(names)
    more = f", ... ({len(ordered)} in all)" if len(ordered) > limit else ""
    return ", ".join(ordered[:limit]) + more
