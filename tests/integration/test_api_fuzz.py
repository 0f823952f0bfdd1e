"""Schemathesis fuzzes every route from the OpenAPI schema, in process, without workers, with a key of
the role each route needs: whatever it sends, the API answers without a 5xx."""
from __future__ import annotations

import itertools
import os

import schemathesis  # declared in the test extra: missing, the suite fails instead of skipping this
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

EXAMPLES = int(os.environ.get("LIKENESS_FUZZ_EXAMPLES", "40"))  # per route and mode (valid, invalid)



def test_no_server_errors(make_stack, make_client):
    stack = make_stack(max_upload_bytes=100_000, max_reference_bytes=50_000, max_references=3)
    client = make_client(stack)
    keys = {"admin": client.admin, "platform": client.key("platform", "tube"),
            "rights_holder": client.key("rights_holder", "nba")}
    (stack.media_root / "platforms" / "tube").mkdir(parents=True)
    (stack.media_root / "platforms" / "tube" / "a.mp4").write_bytes(b"not a video")
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)

    def headers(path: str) -> dict[str, str]:
        if path.startswith("/v1/keys"):
            return keys["admin"]
        if path.startswith(("/v1/likenesses", "/v1/findings")):
            return keys["rights_holder"]
        return keys["platform"]

    failures: list[str] = []
    for result, mode in itertools.product(schema.get_all_operations(), schemathesis.GenerationMode):
        operation = result.ok()

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case):
            response = case.call(headers=headers(case.path))
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

        try:
            call()
        except Unsatisfiable:  # nothing to make invalid (no parameters): the positive run covered it
            assert mode is schemathesis.GenerationMode.NEGATIVE
    assert not failures, "\n".join(failures[:20])
