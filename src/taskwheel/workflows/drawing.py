"""A text drawing of a run's DAG, with each step's state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from taskwheel.workflows.graph import dependents_of

# -- drawing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    node: str
    prefix: str  # the line's start, before the connector
    connector: str
    below: str  # the start of the lines under this node


def draw(
    after: Mapping[str, Sequence[str]],
    labels: Mapping[str, str] | None = None,
    *,
    max_children: int = 20,
) -> list[str]:
    """A text drawing of the DAG: a tree from each root, ``├─``/``└─`` at forks, ``↓``
    for a step that simply follows the one above (so a chain stays at one depth), and
    ``name ↑`` where a step with several dependencies was drawn already, under its first
    one. Forks wider than ``max_children`` show that many and a count of the rest.

    Example:
        >>> print("\\n".join(draw({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})))
        a
        ├─ b
        │  └─ d
        └─ c
           └─ d ↑
    """
    label = labels or {}
    dependents = dependents_of(after)
    lines: list[str] = []
    drawn: set[str] = set()
    elided: set[str] = set()
    # A frame draws a step (and pushes its children); a string is a line as it is.
    stack: list[_Frame | str] = [
        _Frame(name, "", "", "") for name in reversed(list(after)) if not after[name]
    ]
    while stack:
        frame = stack.pop()
        if isinstance(frame, str):
            lines.append(frame)
            continue
        node = frame.node
        if node in drawn:
            lines.append(f"{frame.prefix}{frame.connector}{node} ↑")
            continue
        drawn.add(node)
        lines.append(f"{frame.prefix}{frame.connector}{label.get(node, node)}")
        children = dependents[node]
        if len(children) == 1 and len(set(after[children[0]])) == 1:
            stack.append(_Frame(children[0], frame.below, "↓ ", frame.below))
            continue
        shown = children[:max_children]
        hidden = len(children) - len(shown)
        pushed: list[_Frame | str] = []
        for index, child in enumerate(shown):
            last = index == len(shown) - 1 and not hidden
            pushed.append(_Frame(child, frame.below, "└─ " if last else "├─ ",
                                 frame.below + ("   " if last else "│  ")))
        if hidden:
            elided.update(children[max_children:])
            pushed.append(f"{frame.below}└─ … {hidden} more")
        stack.extend(reversed(pushed))
    unseen = len(after) - len(drawn | elided)
    if unseen:
        lines.append(f"(and {unseen} steps after the elided ones)")
    return lines
