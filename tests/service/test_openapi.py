"""The published OpenAPI document is what the service does: schemathesis generates requests
from it (at least 200 examples per operation) against a live service on loopback, and
every response must be documented, on-schema and never a server error."""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

#: Examples per operation: 200 on SQLite; PostgreSQL runs the same operations with fewer
#: (the backends differ in the catalog layer, which the SQLite run already covers in depth).
EXAMPLES = int(os.environ.get("NANOREPO_SCHEMATHESIS_EXAMPLES", "200"))
PG_EXAMPLES = int(os.environ.get("NANOREPO_SCHEMATHESIS_PG_EXAMPLES", "40"))


def test_every_operation_conforms(service: Any) -> None:
    """Each operation of the document, one after the other, as alice (owner of every
    seeded dataset, so edits are exercised too, not only 401/404s)."""
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    examples = EXAMPLES if service.settings.database_url.startswith("sqlite") else PG_EXAMPLES
    headers = {**service.seed.headers("alice"), "If-Match": "*"}  # edits get through
    seed = service.seed
    real_values = st.one_of(
        st.none(),
        st.sampled_from(
            [
                {"accession": acc, "version": v, "name": f"cell{n}", "image": f"cell{n}",
                 "thread_id": "1", "post_id": "1", "kind": "user", "principal": "bob"}
                for n, acc in enumerate((seed.public, seed.granted, seed.hidden))
                for v in ("v1", "latest")
            ]
        ),
    )  # fmt: skip
    failures: dict[str, str] = {}
    operations = 0
    ran: dict[str, int] = {}
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1
        calls = 0

        @given(case=op.as_strategy(), real=real_values)
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any, real: dict[str, str] | None) -> None:
            nonlocal calls
            calls += 1
            if real is not None and case.path_parameters:  # reach past the 404s too
                for k in case.path_parameters:
                    if k in real:
                        case.path_parameters[k] = real[k]
            # Schema-valid values may still be refused on meaning (a cursor this service did
            # not issue, a date in the past): 422 then is right, so "positive data
            # acceptance" is not asked; everything else is.
            case.call_and_validate(
                headers=headers, excluded_checks=[schemathesis.checks.positive_data_acceptance]
            )

        try:
            run()
        except Exception as exc:
            failures[f"{op.method.upper()} {op.path}"] = str(exc)[:2000]
        else:
            # operations without parameters have one input; every other runs many
            has_params = bool(op.path_parameters or op.query or op.body)
            assert calls >= (min(examples, 20) if has_params else 1), (op.path, calls)
            ran[f"{op.method.upper()} {op.path}"] = calls
    assert operations >= 10
    print("examples per operation:", ran)
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def test_document_is_published_and_complete(service: Any) -> None:
    doc = httpx.get(f"{service.url}/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            responses = op["responses"]
            # every operation documents its errors as problem+json
            for status in ("401", "404", "422"):
                assert "application/problem+json" in responses[status]["content"], (path, method)
            if method in {"patch"}:
                assert "412" in responses and "428" in responses, (path, method)
