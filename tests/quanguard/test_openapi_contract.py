"""The OpenAPI document is the contract: every /v1 write declares its body, every
operation lists the error envelope, and the declared bodies are accepted by the server."""

from __future__ import annotations

from typing import Any

from tests.conftest import auth

# Writes that take no body at all (an action on the path alone).
NO_BODY = {("post", "/v1/audit/checkpoint"), ("post", "/v1/policy/reload")}


def _spec(client: Any) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    return resp.json()  # type: ignore[no-any-return]


def test_every_write_declares_its_body(client: Any) -> None:
    spec = _spec(client)
    missing = [f"{m.upper()} {p}" for p, ops in spec["paths"].items() if p.startswith("/v1")
               for m, op in ops.items()
               if m in ("post", "put", "patch") and (m, p) not in NO_BODY
               and not op.get("requestBody", {}).get("content")]
    assert not missing, missing


def test_every_operation_lists_the_error_envelope(client: Any) -> None:
    spec = _spec(client)
    err = spec["components"]["schemas"]["Error"]
    assert err["properties"]["error"]["required"] == ["kind", "message", "request_id"]
    ref = {"$ref": "#/components/schemas/Error"}
    bad = [f"{m.upper()} {p} {s}" for p, ops in spec["paths"].items() for m, op in ops.items()
           for s in ("400", "401", "403", "413", "415", "422", "503")
           if op["responses"].get(s, {}).get("content", {}).get("application/json", {}).get("schema") != ref]
    assert not bad, bad[:10]


def test_declared_body_forms_of_mask_and_scan(client: Any) -> None:
    spec = _spec(client)
    mask = spec["paths"]["/v1/mask"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-ndjson", "text/csv", "multipart/form-data"} <= set(mask)
    assert mask["application/json"]["schema"]["required"] == ["records"]
    scan = spec["paths"]["/v1/scan"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(scan)
    assert spec["paths"]["/v1/events/batch"]["post"]["requestBody"]["content"].keys() == {"application/x-ndjson"}
    event = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert event == {"$ref": "#/components/schemas/Event"} and "actor" in spec["components"]["schemas"]["Event"][
        "properties"]
    for p in ("/v1/watermark/embed", "/v1/watermark/detect"):
        assert "file" in spec["paths"][p]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"][
            "properties"]


def test_errors_served_match_the_envelope(client: Any, make_key: Any) -> None:
    """A 415 and a 401 come back in the declared envelope."""
    key, _ = make_key("provider")
    for resp in (client.post("/v1/mask", content=b"x", headers={**auth(key), "content-type": "image/png"}),
                 client.post("/v1/mask", json={"records": []})):
        body = resp.json()
        assert set(body) == {"error"} and {"kind", "message", "request_id"} <= set(body["error"])
