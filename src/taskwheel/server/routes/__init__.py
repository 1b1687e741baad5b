"""The API's routers, one per area; each handler is thin: it checks the request
against the app's task registry where the CLI does, and calls the namespace's
`Client`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# A row id in a path: the stores keep 64-bit signed integers.
PathId = Annotated[int, Path(ge=1, le=2**63 - 1)]
