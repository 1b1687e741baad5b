"""A griffe extension for the API reference: our docstrings title their doctests
``Example:`` (STYLE.md), which griffe's Google parser reads as an admonition of plain
text; renamed ``Examples:``, the same lines render as Python code."""

from __future__ import annotations

import re
from typing import Any

import griffe

_TITLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _TITLE.sub(r"\1Examples:", obj.docstring.value)
