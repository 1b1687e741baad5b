"""What the test folders share: the store backends a test can be parametrised over
(`contract/backends.py`), and their declared gaps turned into strict xfails wherever a
test is.

A test runs on every backend by asking for the ``backend`` fixture (its id then shows
the backend: ``[sqlite]``, ``[postgres]``); a folder that makes databases with the
backends' factories forgets them after each test with `forget_databases`.
"""

from __future__ import annotations

import pytest

from contract.backends import BACKENDS, GAP_MARKER, apply_gaps


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{GAP_MARKER}(backend, reason): a known gap of one store backend"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "backend" in callspec.params:
            apply_gaps(item, callspec.params["backend"])


@pytest.fixture(params=list(BACKENDS), ids=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name
