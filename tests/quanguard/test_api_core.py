"""The HTTP skeleton: health, identity, errors with request ids, metrics, body limits."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.headers["x-request-id"]


def test_whoami_with_key(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    key, principal = make_key("provider", org="市人社局")
    r = client.get("/v1/whoami", headers=auth(key))
    assert r.status_code == 200
    assert r.json() == {"id": principal.id, "name": principal.name, "role": "provider", "org": "市人社局"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer qg_00000000_x"}],
)
def test_whoami_rejects_missing_or_bad_keys(client: TestClient, headers: dict[str, str]) -> None:
    r = client.get("/v1/whoami", headers=headers)
    assert r.status_code == 401
    body = r.json()["error"]
    assert body["kind"] == "unauthenticated"
    assert body["request_id"] == r.headers["x-request-id"]
    assert "Traceback" not in r.text


def test_revoked_key_is_401(client: TestClient, container: Container, make_key: Callable[..., tuple[str, Principal]]) -> None:
    from quanguard.auth import revoke_key

    key, principal = make_key("consumer")
    assert client.get("/v1/whoami", headers=auth(key)).status_code == 200
    with container.session() as s, s.begin():
        revoke_key(s, principal.name)
    r = client.get("/v1/whoami", headers=auth(key))
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    assert key not in r.text


def test_request_id_is_echoed_when_sane(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "abc12345-ffff"})
    assert r.headers["x-request-id"] == "abc12345-ffff"
    r = client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert r.headers["x-request-id"] != "<script>"


def test_unknown_route_is_json_404(client: TestClient) -> None:
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404
    assert r.json()["error"]["kind"] == "not_found"


def test_metrics_exposes_requests_and_auth_failures(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/v1/whoami", headers={"Authorization": "Bearer qg_deadbeef_zzz"})
    text = client.get("/metrics").text
    assert 'quanguard_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "quanguard_auth_failures_total 1.0" in text


def test_oversized_body_is_413(container: Container, make_key: Callable[..., tuple[str, Principal]]) -> None:
    from fastapi.testclient import TestClient

    from quanguard.api.app import create_app

    container.settings.__dict__["max_body_bytes"] = 2048  # frozen model: tests poke the cache
    with TestClient(create_app(container)) as c:
        r = c.post("/v1/whoami", content=b"x" * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert json.loads(r.text)["error"]["kind"] == "too_large"


def test_failed_auth_is_rate_limited(container: Container) -> None:
    from fastapi.testclient import TestClient

    from quanguard.api.app import create_app

    container.settings.__dict__["auth_fail_limit"] = 5
    with TestClient(create_app(container)) as c:
        codes = [c.get("/v1/whoami", headers=auth("qg_00000000_bad")).status_code for _ in range(8)]
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429] * 3
