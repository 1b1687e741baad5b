"""Property-based fuzzing of the running server with schemathesis, from its own OpenAPI
document, on both stores: whatever a request holds, no answer is a 5xx, and every answer
has a status, content type and body its operation documents."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from taskwheel.keys import Role

from .conftest import MINE, Running

# Examples per operation: about 30 operations, a few milliseconds each, so the suite
# stays fast; TASKWHEEL_FUZZ_EXAMPLES=200 digs deeper.
EXAMPLES = int(os.environ.get("TASKWHEEL_FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def test_fuzzed_requests_get_no_5xx_and_answers_the_schema_documents(server: Running) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    # The operator's admin key reaches every operation; the namespace is one with
    # something in it, so that requests get past the key to the routes.
    headers = {"Authorization": f"Bearer {server.key('*', Role.ADMIN)}"}
    server.call("POST", "/jobs/batch", json={"jobs": [{"task": "ping"}] * 3})
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    for operation in operations:
        _fuzz(operation, server.url, headers)


def _fuzz(operation: Any, base_url: str, headers: dict[str, str]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        case.path_parameters = {**(case.path_parameters or {}), "namespace": MINE}
        if isinstance(case.body, dict) and isinstance(case.body.get("wait"), int | float):
            # A long-poll claim may wait up to a minute for work: each example (and each
            # step of shrinking a failure) would wait that long.
            case.body["wait"] = min(case.body["wait"], 0.05)
        response = case.call(base_url=base_url, headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    check()
