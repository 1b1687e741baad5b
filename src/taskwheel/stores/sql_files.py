"""Named SQL blocks in ``.sql`` files: ``-- name: claim_jobs`` starts a block."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def load_queries(package: str, filename: str) -> dict[str, str]:
    """Parse ``filename`` in ``package`` into {name: sql}."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{filename}: query {name!r} defined twice")
        queries[name] = body.strip()
    return queries


def load_migrations(package: str) -> list[tuple[int, str, str]]:
    """The numbered ``NNNN_name.sql`` files of a migrations package, in order."""
    found: list[tuple[int, str, str]] = []
    for entry in resources.files(package).iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migrations in {package} are not numbered 1..n: {versions}")
    return found
