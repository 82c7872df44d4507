"""What the small-call fast path of /v1/mask keeps: a replaced key file is used at once,
every call still leaves its own chained event, a policy refusal still refuses."""

from __future__ import annotations

import itertools
import json
import os
import secrets
from pathlib import Path

from quanguard.container import Container
from tests.conftest import auth


def test_a_replaced_key_file_is_used_by_the_next_call(container: Container) -> None:
    service = container.masker
    first = service.keyring()
    assert service.keyring() is first  # kept while the file is the same
    path = container.settings.key_dir / "mask.key"
    tmp = path.with_suffix(".new")
    crypto = container.settings.crypto  # a key record of the deployment's suite
    header = "" if crypto == "intl" else f"suite={crypto}\n"
    tmp.write_text(header + secrets.token_hex(32) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)  # how a rotation puts a new key in place
    assert service.keyring().derive("hash") != first.derive("hash")


def test_every_small_call_appends_its_own_chained_event(client: object, container: Container,
                                                        make_key: object) -> None:
    key, _ = make_key("provider")  # type: ignore[operator]
    with container.session() as s:
        before = container.audit.store.head(s).seq
    for i in range(5):
        resp = client.post("/v1/mask", json={"records": [{"姓名": "张三", "编号": i}]},  # type: ignore[attr-defined]
                           headers=auth(key))
        assert resp.status_code == 200, resp.text
        assert resp.json()["records"] == [{"姓名": "张*", "编号": i}]
    with container.session() as s:
        events = list(container.audit.store.iter_range(s, before + 1))
    assert [json.loads(e.body)["event"]["action"] for e in events] == ["mask"] * 5
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(events))


def test_a_policy_refusal_still_refuses_a_small_call(client: object, container: Container,
                                                     make_key: object) -> None:
    key, who = make_key("auditor")  # type: ignore[operator]
    with container.session() as s:
        before = container.audit.store.head(s).seq
    resp = client.post("/v1/mask", json={"records": [{"姓名": "张三"}]}, headers=auth(key))  # type: ignore[attr-defined]
    assert resp.status_code == 403, resp.text
    assert "张三" not in resp.text
    # the refusal leaves its own event, like every small call, and not the data
    with container.session() as s:
        (event,) = list(container.audit.store.iter_range(s, before + 1))
    body = json.loads(event.body)
    assert body["event"]["action"] == "mask" and body["event"]["outcome"] == "failure"
    assert body["user"]["id"] == who.id
    assert "张三" not in event.body


def test_a_reloaded_grading_grades_the_next_small_call(tmp_path: Path) -> None:
    import shutil

    from fastapi.testclient import TestClient

    from quanguard.api.app import create_app
    from quanguard.container import build_container
    from tests.conftest import POLICY_DIR, make_settings

    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies, ignore=shutil.ignore_patterns("__pycache__"))
    own = build_container(make_settings(tmp_path / "own", policy_dir=policies))
    try:
        from quanguard.auth import create_key

        with own.session() as s, s.begin():
            key = create_key(s, role="provider", org="市大数据局", name="p").key
        client = TestClient(create_app(own))

        def grade() -> str:
            r = client.post("/v1/mask", json={"records": [{"联系电话": "13812345678"}]}, headers=auth(key))
            assert r.status_code == 200, r.text
            return str(r.json()["summary"]["dataset_grade"])

        assert grade() == "L3"
        text = (policies / "grading.yaml").read_text(encoding="utf-8")
        head, _, tail = text.partition("entities: [PHONE_NUMBER, EMAIL_ADDRESS]")
        assert tail, "grading.yaml no longer lists phone numbers where this test expects"
        cut = head.rfind("grade: L3")
        (policies / "grading.yaml").write_text(head[:cut] + "grade: L4" + head[cut + 9:]
                                               + "entities: [PHONE_NUMBER, EMAIL_ADDRESS]" + tail,
                                               encoding="utf-8")
        assert own.policy.reload().ok
        assert grade() == "L4"
    finally:
        own.close()


def _cp_sizes(c: Container) -> list[int]:
    with c.session() as s:
        return [cp.checkpoint.tree_size for cp in c.audit.trail.checkpoints(s)]


def test_checkpoints_keep_their_cadence_when_the_lookup_is_spared(tmp_path: Path) -> None:
    from quanguard.auth import Principal
    from quanguard.container import build_container
    from tests.conftest import make_settings

    c = build_container(make_settings(tmp_path, audit_checkpoint_every=4))
    actor = Principal(id="k1", role="provider", org="市大数据局", name="p")
    try:
        for _ in range(13):
            with c.session() as s, s.begin():
                c.audit.record(s, actor=actor, action="query")
        assert _cp_sizes(c) == [1, 5, 9, 13]
        # a transaction whose checkpoint is rolled back teaches the process nothing
        with c.session() as s:
            s.begin()
            for _ in range(4):
                c.audit.record(s, actor=actor, action="query")
            s.rollback()
        assert _cp_sizes(c) == [1, 5, 9, 13]
        for _ in range(4):
            with c.session() as s, s.begin():
                c.audit.record(s, actor=actor, action="query")
        assert _cp_sizes(c) == [1, 5, 9, 13, 17]
        # another process's checkpoint: the next due one is still written on time
        other = build_container(make_settings(tmp_path, audit_checkpoint_every=4))
        with other.session() as s, s.begin():
            other.audit.record(s, actor=actor, action="query")
            other.audit.checkpoint(s)
        other.close()
        for _ in range(4):
            with c.session() as s, s.begin():
                c.audit.record(s, actor=actor, action="query")
        assert _cp_sizes(c) == [1, 5, 9, 13, 17, 18, 22]
    finally:
        c.close()
