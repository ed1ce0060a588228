"""Schemathesis against a running server: what the contract promises, as one command line.

Used by tests/e2e/test_openapi_contract.py (a few seeded examples per operation, in CI) and by
bench/contract_fuzz.py (the long run).
"""

from __future__ import annotations

import sys
from pathlib import Path

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
# No 5xx, only documented statuses, content types, headers and bodies, invalid requests refused.
# ("Schema-valid request accepted" is left out on purpose: a valid JSON string can still be a
# phone number of no region or a card with a wrong check digit, refused with a documented 422.)
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
)


def schemathesis_command(
    base_url: str, token: str, *, examples: int, report_dir: Path, seed: int | None = 20261207
) -> list[str]:
    """Every phase (examples, coverage, fuzzing, stateful), one worker, no shrinking."""
    command = [
        SCHEMATHESIS,
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(examples),
        "--no-shrink",
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        "--report-dir",
        str(report_dir),
    ]
    if seed is not None:
        command += ["--seed", str(seed), "--generation-deterministic"]
    return command
