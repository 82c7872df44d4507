"""Review rvF — PSI probing with duplicated identifiers.

Attack (a consumer on an L3 dataset, PSI revealing the count, ``psi_min_set_size`` 10):
blinding is deterministic, so a hand-made request holding one guessed identifier ten
times passed the minimum set size and answered "member or not" for that one person
(a count of 10 or 0). Under ``psi_count_epsilon`` the ten copies are ten independent
randomised responses of the same person: their majority averages the noise away.

Guarantee: a request whose blinded elements repeat is refused (400), recorded, and
answers nothing; it does not count towards the request limits.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import private_set_intersection.python as _psi
import pytest
from fastapi.testclient import TestClient

from exchange import PsiClient
from quanguard.auth import Principal
from quanguard.container import Container
from tests.security.test_seams_exchange import _l3_members, events, send_psi

PROV, BANK = "市卫健委", "某银行"


@pytest.fixture
def keys(client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> dict[str, str]:
    return {"prov": make_key("provider", org=PROV)[0], "bank": make_key("consumer", org=BANK)[0],
            "mgr": make_key("manager")[0]}


def raw_request(ids: list[str]) -> bytes:
    """A request as a hostile client builds it (PsiClient itself drops duplicates)."""
    return bytes(_psi.client.CreateWithNewKey(False).CreateRequest(ids).SerializeToString())


@pytest.mark.parametrize("probe", [lambda ids: [ids[0]] * 10,
                                   lambda ids: [ids[0]] * 5 + [f"PAD{i}" for i in range(5)]],
                         ids=["one id ten times", "one id five times plus padding"])
def test_duplicated_identifiers_are_refused_and_recorded(client: TestClient, keys: dict[str, str], container: Container, probe: Callable[[list[str]], list[str]]) -> None:
    ids = _l3_members(client, keys)
    before = len(events(container))
    r = send_psi(client, keys["bank"], "contacts", raw_request(probe(ids)))
    assert r.status_code == 400, r.text
    assert "duplicate" in r.json()["error"]["message"]
    assert "setup" not in r.text and "response" not in r.json()
    new = events(container)[before:]
    assert [e for e in new if e["event"]["action"] == "exchange.psi"
            and e["event"]["outcome"] == "failure"], json.dumps(new, ensure_ascii=False)[:2000]
    # an honest request of distinct identifiers still runs
    local = PsiClient(ids[:10] + [f"Z{i}" for i in range(5)], reveal="count")
    r = send_psi(client, keys["bank"], "contacts", local.request())
    assert r.status_code == 200, r.text
    out = local.finish(base64.b64decode(r.json()["setup"]), base64.b64decode(r.json()["response"]))
    assert out.intersection_size == 10
