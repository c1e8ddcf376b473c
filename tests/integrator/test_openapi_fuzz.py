"""Schemathesis against the served OpenAPI document: no input may cause a 5xx.

Driven through hypothesis directly (schemathesis' pytest plugin does not load
under pytest 9 here); examples are bounded so the run stays short.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

MAX_EXAMPLES = 15

# Uploads are raw zip bytes: serialise them like application/octet-stream.
schemathesis.serializer.alias("application/zip", "application/octet-stream")


@pytest.fixture(scope="module")
def live_schema(default_integrator):  # type: ignore[no-untyped-def]
    _tid, user, pw = default_integrator.account()
    schema = schemathesis.openapi.from_url(f"{default_integrator.url}/openapi.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    return default_integrator, (user, pw), ops


def test_openapi_lists_every_operation(live_schema) -> None:  # type: ignore[no-untyped-def]
    _, _, ops = live_schema
    labels = {op.label for op in ops}
    assert {
        "GET /health",
        "PUT /v1/files/{filename}",
        "GET /v1/files/{filename}",
        "DELETE /v1/files/{filename}",
        "GET /v1/files",
        "POST /v1/submissions",
        "GET /v1/months/{taxpayer_id}/{period}",
    } <= labels


@pytest.mark.parametrize("authenticated", [True, False])
def test_no_server_errors(live_schema, authenticated: bool) -> None:  # type: ignore[no-untyped-def]
    integ, auth, ops = live_schema
    strategy = st.one_of(*[op.as_strategy() for op in ops])

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES * len(ops),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case) -> None:  # type: ignore[no-untyped-def]
        case.call_and_validate(
            base_url=integ.url, auth=auth if authenticated else None, timeout=30, checks=[not_a_server_error]
        )

    run()
