"""schemathesis against the live server's /openapi.json: no 5xx, every response matches the spec."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.serve.server import Server, create_key, wait_job

pytestmark = pytest.mark.slow


def test_openapi_spec_holds_under_generated_requests(tmp_path) -> None:
    kb = tmp_path / "kb"
    key = create_key(kb, "fuzz", "query,ingest,admin")
    srv = Server(
        kb, env={"GROUNDWORK_SERVE__RATE_BURST": "100000", "GROUNDWORK_SERVE__RATE_PER_MINUTE": "1000000"}
    ).start()
    try:
        with srv.client(key) as c:  # something to find
            r = c.post(
                "/v1/documents",
                files=[("files", ("a.md", b"# Alpha\n\nAlpha beta gamma delta text here.\n", "text/markdown"))],
            )
            assert wait_job(c, r.json()["job_id"])["status"] == "done"
        schema = schemathesis.openapi.from_url(srv.url + "/openapi.json")
        spec = schema.raw_schema
        assert set(spec["paths"]) >= {
            "/v1/search",
            "/v1/answer",
            "/v1/chat/completions",
            "/v1/documents",
            "/v1/jobs/{job_id}",
            "/v1/feedback",
            "/v1/versions",
            "/v1/audit",
            "/healthz",
            "/readyz",
            "/metrics",
        }
        for path, ops in spec["paths"].items():
            for method, op in ops.items():
                if path.startswith("/v1/"):
                    assert {"401", "403", "429"} <= set(op["responses"]), f"{method} {path} does not declare its errors"
        failures: list[str] = []
        for result in schema.get_all_operations():
            op = result.ok()

            @settings(
                max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
            )
            @given(case=op.as_strategy())
            def check(case) -> None:
                response = case.call(base_url=srv.url, headers={"Authorization": f"Bearer {key}"})
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:200]}")
                    return
                try:
                    case.validate_response(
                        response,
                        checks=[
                            schemathesis.checks.response_schema_conformance,
                            schemathesis.checks.status_code_conformance,
                            schemathesis.checks.content_type_conformance,
                        ],
                    )
                except Exception as exc:  # schemathesis raises a FailureGroup listing each violation
                    failures.append(f"{case.method} {case.path}: {str(exc)[:300]}")

            check()
        assert not failures, "\n".join(failures[:10])
    finally:
        srv.stop()
