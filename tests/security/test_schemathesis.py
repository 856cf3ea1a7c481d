"""schemathesis with stateful links against a live service, anonymous and as an admin.

Operations are chained through the links schemathesis infers from the OpenAPI document
(a thread created is then read, edited, replied to; a run begun is finished ...). Every
response must be documented, on-schema and never a server error. Bounded: a fixed number
of scenarios of a few steps each, well under two minutes for both callers.

One check is left out, ``positive_data_acceptance`` (ST202, "schema-valid request
rejected"): the service refuses some schema-valid requests on meaning, which JSON Schema
cannot state (a cursor it did not issue, NUL in free-form text, a reply to a post of
another thread, a notebook that does not match its digest). docs/security.md lists each
kind and why a 4xx is right; the test below still counts them, so a new kind is seen.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

#: Scenarios per caller and steps per scenario (CI keeps the defaults).
SCENARIOS = int(os.environ.get("NANOREPO_STATEFUL_SCENARIOS", "25"))
STEPS = int(os.environ.get("NANOREPO_STATEFUL_STEPS", "8"))

#: Why the service may refuse a schema-valid request: phrases of its own 4xx details.
JUSTIFIED_REFUSALS = (
    "is not one this service issued",  # cursors are opaque: only the service makes them
    "must not contain NUL",  # PostgreSQL cannot store NUL; free-form objects cannot say so
    "is not a post of thread",  # a reply's parent must be in the same thread
    "does not match its digest",  # the notebook's bytes must hash to the digest sent
    "anchor.kind must be",  # free-form anchor objects, checked by the annotation rules
    "@context: must include",  # a W3C import must be a W3C document
    "needs an If-Match header",  # ... when the generator leaves the header out on purpose
    "is not in the future",  # an embargo ends after today
)


@pytest.mark.parametrize("caller", ["anonymous", "root"])
def test_stateful_links_find_no_server_error_and_no_undocumented_answer(
    service: Any, caller: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    # The multipart deposit upload streams files: covered by tests/service/test_deposits.py.
    schema = schema.exclude(path_regex=r"/deposits$")
    headers = service.seed.headers(caller)
    refused: list[str] = []
    calls = 0

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers, "timeout": 60}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            nonlocal calls
            calls += 1
            assert response.status_code < 500, (case.method, case.path, response.text[:500])
            if 400 <= response.status_code < 500 and response.status_code not in {401, 403, 404}:
                refused.append(response.text)
            case.validate_response(
                response,
                excluded_checks=[schemathesis.checks.positive_data_acceptance],
                transport_kwargs=kwargs or None,
            )

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),
    )
    assert calls >= SCENARIOS
    kinds = {p: sum(p in t for t in refused) for p in JUSTIFIED_REFUSALS}
    print(f"{caller}: {calls} calls, {len(refused)} refused with 4xx; justified kinds: {kinds}")
