"""GET /v1/audit/search takes the relative times of the CLI's --since/--until (15m, 24h, 7d, 2w)."""

from __future__ import annotations

from typing import Any

from tests.conftest import auth
from tests.quanguard.test_audit_api import keys, line  # noqa: F401 - fixture


def test_search_takes_relative_since_and_until(client: Any, keys: dict[str, str]) -> None:  # noqa: F811
    body = "\n".join(line(i) for i in range(3))  # 30 minutes ago
    assert client.post("/v1/events/batch", content=body, headers=auth(keys["reporter"])).status_code == 200

    def total(**params: str) -> int:
        r = client.get("/v1/audit/search", params={"action": "query", **params}, headers=auth(keys["auditor"]))
        assert r.status_code == 200, r.text
        return int(r.json()["total"])

    assert total(since="1h") == 3
    assert total(since="15m") == 0
    assert total(since="2d", until="15m") == 3
    assert total(since="1w", until="1h") == 0
    r = client.get("/v1/audit/search", params={"since": "yesterday"}, headers=auth(keys["auditor"]))
    assert r.status_code == 400 and "15m" in r.json()["error"]["message"]
