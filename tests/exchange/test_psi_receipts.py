from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from exchange import (
    Exchange,
    Job,
    PsiAnswer,
    PsiClient,
    PsiOutcome,
    ReceiptInvalid,
    ReceiptSigner,
    Refused,
    verify_receipt,
)
from exchange.psi import serve
from tests.conftest import active_suite
from tests.exchange.fakes import CONSUMER, ListAudit, default_decider, population

SUITE = active_suite()


def _psi(ex: Exchange, sessions: sessionmaker[Session], ids: list[str],
         reveal: str) -> tuple[Job, PsiOutcome, bytes, PsiAnswer]:
    client = PsiClient(ids, reveal=reveal)
    req = client.request()
    with sessions() as s, s.begin():
        job, answer = ex.delivery.psi(s, ListAudit(), CONSUMER, dataset="residents", request=req)
    assert answer is not None
    return job, client.finish(answer.setup, answer.response), req, answer


@pytest.mark.parametrize("reveal", ["count", "matches"])
def test_psi_through_exchange(sessions: sessionmaker[Session], make_exchange: Callable[..., Exchange], reveal: str) -> None:
    from tests.exchange.fakes import PROVIDER
    ex = make_exchange(default_decider(psi_reveal=reveal))
    with sessions() as s, s.begin():
        ex.register(s, ListAudit(), PROVIDER, name="residents", table=population(300),
                    key_columns=["id"])
    mine = [f"3701{i:010d}" for i in (3, 5, 299)] + ["9999", "8888"]
    job, out, req, answer = _psi(ex, sessions, mine, reveal)
    assert job.receipt is not None
    assert out.intersection_size == 3
    assert job.status == "done" and job.receipt["epsilon_spent"] == 0.0
    if reveal == "matches":
        assert set(out.matches or ()) == set(mine[:3])
    else:
        assert out.matches is None
    # raw identifiers never travel: the request holds none of them
    assert all(i.encode() not in req for i in mine)
    # the receipt names the run's hash, and its result digest is that hash of the answer
    assert job.receipt["hash_alg"] == SUITE.hash_alg
    assert job.receipt["signature_alg"] == SUITE.sign_alg
    assert job.receipt["result_digest"] == answer.digest_with(SUITE) == SUITE.hexdigest(
        answer.setup + answer.response)


def test_client_cannot_ask_for_matches_when_policy_reveals_count() -> None:
    client = PsiClient(["a", "b"], reveal="matches")
    with pytest.raises(Refused, match="only the count"):
        serve(["a"], client.request(), reveal="count", max_client_items=10)


def test_psi_request_size_limit() -> None:
    client = PsiClient([str(i) for i in range(50)], reveal="count")
    with pytest.raises(Refused, match="limit"):
        serve(["1"], client.request(), reveal="count", max_client_items=10)


def test_receipt_verifies_and_every_tamper_fails(tmp_path: Path) -> None:
    signer = ReceiptSigner.from_dir(tmp_path, SUITE)
    result = [{"group": {"sex": "男"}, "value": 1001.5}]
    from exchange import result_digest
    r = signer.sign(job="job-1", kind="aggregate", dataset="d", dataset_digest="ab" * 32,
                    query={"agg": "count"}, epsilon_spent=0.5, delta_spent=1e-9,
                    result_digest=result_digest(result, SUITE), issued_at="2026-11-26T08:00:00+00:00")
    verify_receipt(r, result=result, public_key=signer.public_key)
    for field, value in [("epsilon_spent", 0.1), ("job", "job-2"), ("query", {"agg": "sum"}),
                         ("dataset_digest", "cd" * 32), ("issued_at", "2030")]:
        bad = copy.deepcopy(r)
        bad[field] = value
        with pytest.raises(ReceiptInvalid):
            verify_receipt(bad)
    with pytest.raises(ReceiptInvalid, match="result"):
        verify_receipt(r, result=[{"group": {"sex": "男"}, "value": 5.0}])
    other = ReceiptSigner.from_dir(tmp_path / "other", SUITE)
    forged = other.sign(job="job-1", kind="aggregate", dataset="d", dataset_digest="ab" * 32,
                        query={"agg": "count"}, epsilon_spent=0.0, delta_spent=0.0,
                        result_digest="00", issued_at="x")
    verify_receipt(forged)  # self-consistent...
    with pytest.raises(ReceiptInvalid, match="different key"):
        verify_receipt(forged, public_key=signer.public_key)  # ...but not ours
    for broken in ({}, {k: v for k, v in r.items() if k != "signature"}, "x"):
        with pytest.raises(ReceiptInvalid):
            verify_receipt(broken)  # type: ignore[arg-type]


def test_malformed_requests_are_invalid_not_errors() -> None:
    import private_set_intersection.python as raw

    from exchange import InvalidQuery
    req = raw.Request()
    req.encrypted_elements.append(b"not a point")
    for blob in (req.SerializeToString(), b"", b"\xff\xff\xff"):
        with pytest.raises(InvalidQuery):
            serve(["a"], blob, reveal="count", max_client_items=10)
