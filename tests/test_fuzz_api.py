"""Schemathesis against /api/openapi.json with a valid admin token: no 5xx, every 4xx is problem+json.

Every operation of the served OpenAPI document gets generated requests (valid and
not), sent in-process to the app (its transaction rolled back after the test).
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import bearer

EXAMPLES = 25


def test_no_generated_request_breaks_the_api(app, make_user, demo_grids):
    token = make_user("admin")[1]
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            response = case.call(headers=bearer(token))
            if response.status_code >= 500:
                failures.append((case.method, case.formatted_path, case.query, case.body, response.text[:200]))
            elif response.status_code >= 400 and not _content_type(response).startswith("application/problem+json"):
                failures.append((case.method, case.formatted_path, "not problem+json", response.text[:200]))

        check()
    assert failures == [], sorted({f[:2] + (f[-1][:120],) for f in failures})


def _content_type(response) -> str:
    value = response.headers.get("Content-Type") or response.headers.get("content-type") or ""
    return value[0] if isinstance(value, list) else value
