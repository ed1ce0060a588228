"""The OpenAPI document is the contract the tills are generated from: it is a valid OpenAPI 3.1
document whose references all resolve, and a real server keeps it when schemathesis attacks it
(generated valid and invalid requests, then stateful sequences: enrol → identify → sell → refund).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from api.app import create_app
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.cli.receipt_preview import render_receipt_png
from pos_loyalty.store import Store
from tests.conftest import from_this_machine, new_key
from tests.contract import schemathesis_command
from tests.serving import SAFETY_S, running_server


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return {"lanes": [{"id": "lane-1"}]}


def walk_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in walk_refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in walk_refs(item)]
    return []


def test_the_document_is_valid_and_every_reference_resolves(client: TestClient) -> None:
    document = from_this_machine(client).get("/openapi.json").json()  # served to this machine
    validate(document)  # openapi-spec-validator: the whole document against OpenAPI 3.1
    components = document["components"]["schemas"]
    for ref in walk_refs(document):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in components, ref
    commit = document["paths"]["/v1/transactions"]["post"]
    body = commit["requestBody"]["content"]["application/json"]["schema"]
    assert "BasketCommit" in json.dumps(body) and "$defs" not in json.dumps(document)
    assert "BasketLineIn" in json.dumps(components["BasketCommit"])
    for status in ("400", "401", "403", "404", "409", "413", "422", "429", "503"):
        refusal = commit["responses"][status]["content"]["application/json"]["schema"]
        assert refusal == {"$ref": "#/components/schemas/Error"}, status
    (key,) = [p for p in commit["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["required"] is True
    enrol = components["CustomerCreate"]["properties"]
    assert enrol["phone"]["pattern"] and enrol["card_number"]["anyOf"][0]["pattern"]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    store: Store, tmp_path: Path
) -> None:
    app = create_app(store.settings, store=store, receipt_png=render_receipt_png)
    token = new_key(store, Scope.ADMIN)
    with running_server(app) as port:
        run = subprocess.run(
            schemathesis_command(
                f"http://127.0.0.1:{port}", token, examples=3, report_dir=tmp_path
            ),
            capture_output=True,
            text=True,
            timeout=SAFETY_S,
        )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Stateful" in run.stdout
