"""The OpenAPI document, checked by an independent validator, and the server's answers checked
against it, route by route."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jsonschema
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conftest import Server


def check(document: dict[str, Any], route: str, method: str, response: httpx.Response) -> None:
    """The answer's status is documented for the route, and its JSON body matches the schema."""
    operation = document["paths"][route][method]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method.upper()} {route} answered {status}, undocumented"
    content = operation["responses"][status].get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return
    # The document is one JSON Schema resource: its `#/components/schemas/…` resolve in it.
    registry = Registry().with_resource("urn:theory:openapi", Resource(contents=document, specification=DRAFT202012))
    assert "$ref" in schema, f"{method.upper()} {route} {status}: an inline schema"
    validator = jsonschema.Draft202012Validator({"$ref": "urn:theory:openapi" + schema["$ref"]}, registry=registry)
    validator.validate(response.json())


def test_the_document_is_valid_openapi_and_every_answer_matches_it(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        document = http.get("/v1/openapi.json").json()
        validate(document)
        assert document["openapi"] == "3.1.0"
        assert "Inputs.theory.probe.1" in document["components"]["schemas"]

        answers: list[tuple[str, str, httpx.Response]] = []

        def call(method: str, route: str, path: str, **kwargs: Any) -> httpx.Response:
            response = http.request(method.upper(), path, **kwargs)
            answers.append((route, method, response))
            return response

        created = call("post", "/v1/runs", "/v1/runs", json={"ref": "theory/probe@1", "inputs": {"text": "spec"}},
                       headers={"Prefer": "wait"}).json()
        run_id = created["id"]
        call("post", "/v1/runs", "/v1/runs", json={"ref": "theory/probe@1", "inputs": {"size_bytes": "x"}})
        call("post", "/v1/runs", "/v1/runs", json={"ref": "nope/none@1"})
        call("post", "/v1/runs", "/v1/runs", content=b"{not json", headers={"Content-Type": "application/json"})
        call("get", "/v1/runs", "/v1/runs", params={"limit": 1})
        call("get", "/v1/runs", "/v1/runs", params={"limit": 1000})
        call("get", "/v1/runs/{id}", f"/v1/runs/{run_id}")
        chosen = f"py-{uuid.uuid4().hex}"
        body = {"ref": "theory/probe@1", "inputs": {"text": "put"}}
        call("put", "/v1/runs/{id}", f"/v1/runs/{chosen}", json=body)
        call("put", "/v1/runs/{id}", f"/v1/runs/{chosen}", json=body)
        call("put", "/v1/runs/{id}", f"/v1/runs/{chosen}", json={"ref": "theory/probe@1"})
        call("get", "/v1/runs/{id}", "/v1/runs/01NOSUCHRUN0000000000000000")
        call("post", "/v1/runs/{id}/cancel", f"/v1/runs/{run_id}/cancel")
        call("get", "/v1/runs/{id}/receipt", f"/v1/runs/{run_id}/receipt")
        call("get", "/v1/runs/{id}/webhooks", f"/v1/runs/{run_id}/webhooks")
        call("get", "/v1/runs/{id}/verify", f"/v1/runs/{run_id}/verify")
        call("get", "/v1/runs/{id}/verify", "/v1/runs/01NOSUCHRUN0000000000000000/verify")
        call("get", "/v1/ledger/verify", "/v1/ledger/verify")
        call("get", "/v1/runs/{id}/ledger", f"/v1/runs/{run_id}/ledger")
        call("get", "/v1/runs/{id}/attestation", f"/v1/runs/{run_id}/attestation")
        call("get", "/v1/runs/{id}/events", f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": "x"})
        call("post", "/v1/uploads", "/v1/uploads", content=b"spec bytes", params={"name": "s.txt"})
        call("post", "/v1/uploads", "/v1/uploads", content=b"x", params={"name": "../x"})
        output = created["envelope"]["outputs"][0]["path"]
        call("get", "/v1/artifacts/{path}", "/v1/artifacts" + output)
        call("get", "/v1/artifacts/{path}", "/v1/artifacts/artifacts/outputs/none.txt")
        call("get", "/v1/processors", "/v1/processors")
        call("get", "/v1/processors/{ref}", "/v1/processors/theory/probe@1")
        call("get", "/v1/processors/{ref}", "/v1/processors/nope/none@1")
        call("post", "/v1/plans", "/v1/plans", json={"key": "spec-plan", "budget_usd_micro": 10})
        call("post", "/v1/plans", "/v1/plans", json={"key": "spec-plan", "budget_usd_micro": 10})
        call("post", "/v1/plans", "/v1/plans", json={"key": "bad key!", "budget_usd_micro": 10})
        call("get", "/v1/plans", "/v1/plans")
        call("get", "/v1/plans/{key}", "/v1/plans/spec-plan")
        call("get", "/v1/plans/{key}", "/v1/plans/none")
        call("get", "/healthz", "/healthz")
        call("get", "/readyz", "/readyz")
        call("get", "/metrics", "/metrics")
        for route, method, response in answers:
            check(document, route, method, response)
        statuses = {response.status_code for _, _, response in answers}
        assert {200, 201, 400, 404, 409, 422} <= statuses
