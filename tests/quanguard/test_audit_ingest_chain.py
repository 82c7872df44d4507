"""`quanguard audit ingest` stores the very same trail however its hot path is written.

A mixed file (plain lines, every optional key, escapes and odd characters, time zones,
secrets and personal values in free text, invalid lines) goes through the real CLI twice
(the second run continues the chain, in small chunks), with event ids and the clock made
deterministic. The stored ``body``, ``leaf_hash``, ``prev_hash`` and ``hash`` columns, the
per-line errors and the raised alerts are pinned to what the code gave before the ingest
was optimised (issue 15): a faster parser, serialiser or store must give byte-identical
rows. The PII redactor is a stand-in (the analyzer's output is not what is pinned here);
the secret scrubber and the fast reject in front of it are the real ones.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

NOW = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)

# sha256 over every stored row's seq, body, leaf_hash, prev_hash and hash, in seq order
# (see ``_rows_digest``), computed by the code before issue 15's ingest work.
GOLDEN_ROWS = "2bba1ed70a8a5717c34cc4bea0ffaa98118fb8316edf89c6782b36f39a7f326a"
GOLDEN_HEAD = "1deb60c7ae173ec42700426e1516eebadd88a674f0880da3d3653d6f6f7226c4"
GOLDEN_ALERTS = "7461b066b3ab23f377c0e4c2f51c772f2b8a070b9169af0a427c784664084831"
# sha256 of the JSON list of per-line errors of both files; re-pinned once, on purpose, when
# a line that is not UTF-8 (b.ndjson line 41) got a message saying what to do instead of
# Python's codec message (the other 59 errors compared one by one: unchanged)
GOLDEN_ERRORS = "7ba9a22a5eb6b5078cfb6358a55fefac0ab3c7b248f0c72596a576e79896f7d5"

ORGS = ["市大数据局", "市卫健委", "历下区政务服务中心", 'org "quoted" \\ back']
ACTIONS = ["query", "read_masked", "export", "aggregate", "download", "api_call", "read_raw"]
DATASETS = ["户籍人口", "社保缴纳", "企业登记", "ds\twith\ttabs", "医保结算"]
PURPOSES = ["月度统计报表", "资格核验", "fraud review", "人口普查数据比对", "课题研究（已审批）",
            "回访电话13800138000", "token qg_0123abcd_SECRETsecret42 pasted", "line\nbreak \u2028 sep",
            "emoji \U0001f600 and \u00e9", "控制字符\u0001\u001f"]
ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]


def _mixed_lines(n: int, *, seed: int, start: datetime) -> Iterator[str]:
    """``n`` lines in time order over the three days before ``NOW``, with every optional
    key now and then, and an invalid line every so often."""
    rng = random.Random(seed)
    for i in range(n):
        ts = (start + timedelta(seconds=137 * i + rng.randrange(60),
                                microseconds=rng.choice([0, 1, 999_999, rng.randrange(10**6)])))
        zone = rng.choice(ZONES)
        actor = rng.randrange(40)
        line: dict[str, Any] = {
            "ts": _ts_text(ts.astimezone(zone), rng),
            "actor": {"id": f"user-{actor:03d}", "role": ["consumer", "provider", "manager"][actor % 3],
                      "org": ORGS[actor % len(ORGS)]},
            "action": rng.choice(ACTIONS),
        }
        if actor % 5 == 0:
            line["actor"]["name"] = f"名字-{actor}" if actor % 10 else ""
        for key, values in (("dataset", DATASETS), ("grade", ["L1", "L2", "L3", "L4"]),
                            ("purpose", PURPOSES), ("reason", PURPOSES)):
            if rng.random() < (0.9 if key != "reason" else 0.2):
                line[key] = rng.choice(values)
        if rng.random() < 0.8:
            line["fields"] = rng.sample(["姓名", "身份证号", "手机号", "地址", 'a"b', "x\\y"],
                                        rng.randrange(0, 4))
        if rng.random() < 0.85:
            line["rows"] = rng.choice([0, 1, rng.randrange(10_000), 2**40])
        if rng.random() < 0.9:
            line["decision"] = rng.choice(["allow", "allow", "allow", "deny", "approval_required",
                                           "error"])
            if rng.random() < 0.3:
                line["rule_id"] = rng.choice(["r1", "规则-2"])
            if rng.random() < 0.3:
                line["policy_version"] = rng.choice(["v1", "2026.11"])
        for key, value in (("outcome", rng.choice(["success", "failure", "unknown"])),
                           ("source_ip", f"10.{actor}.{i % 256}.{rng.randrange(1, 255)}"),
                           ("request_id", f"req-{i:05d}"),
                           ("result_digest", hashlib.sha256(str(i).encode()).hexdigest()),
                           ("labels", {"b": "2", "a": "一", "z\u00e9": "\"q\""}),
                           ("reporter", "local-operator")):
            if rng.random() < 0.25:
                line[key] = value
        text = json.dumps(line, ensure_ascii=rng.random() < 0.3,
                          separators=rng.choice([(",", ":"), (", ", ": ")]))
        yield text
        if i % 17 == 5:
            yield _BAD[(i // 17) % len(_BAD)]
        if i % 29 == 3:
            yield ""


def _ts_text(ts: datetime, rng: random.Random) -> str:
    text = ts.isoformat()
    if ts.utcoffset() == timedelta(0) and rng.random() < 0.5:
        text = text.replace("+00:00", rng.choice(["Z", "z"]))
    return text


_BAD = [
    "{oops",
    "[1, 2]",
    json.dumps({"ts": "2026-11-29T00:00:00Z", "actor": {"id": "u", "role": "r", "org": "o"},
                "action": "no_such_action"}),
    json.dumps({"ts": "2026-11-29T00:00:00", "actor": {"id": "u", "role": "r", "org": "o"},
                "action": "query"}),
    json.dumps({"ts": "2026-12-29T00:00:00Z", "actor": {"id": "u", "role": "r", "org": "o"},
                "action": "query"}),
    json.dumps({"ts": "2026-11-29T00:00:00Z", "actor": {"id": " ", "role": "r", "org": "o"},
                "action": "query"}),
    json.dumps({"ts": "2026-11-29T00:00:00Z", "actor": {"id": "u", "role": "r", "org": "o"},
                "action": "query", "rows": -1}),
    json.dumps({"ts": "2026-11-29T00:00:00Z", "actor": {"id": "u", "role": "r", "org": "o"},
                "action": "query", "rows": True}),
    json.dumps({"ts": "2026-11-29T00:00:00Z", "actor": {"id": "u", "role": "r", "org": "o"},
                "action": "query", "extra": 1}),
    json.dumps({"ts": "2026-11-29T00:00:00Z", "actor": {"id": "u", "role": "r", "org": "o"},
                "action": "query", "labels": {"a": 1}}),
    json.dumps({"ts": "2026-11-29T00:00:00Z", "actor": {"id": "u", "role": "r", "org": "o"},
                "action": "query", "reporter": "someone-else"}),
    json.dumps({"ts": "2026-11-29T00:00:00Z", "actor": {"id": "u", "role": "r", "org": "o"},
                "action": "query", "purpose": "lone \ud800 surrogate"}),
    ('{"ts": "2026-11-29T00:00:00Z", "actor": {"id": "u", "role": "r", "org": "o"}, '
     '"action": "query", "purpose": "escaped lone \\ud800 surrogate"}'),
]


def _fake_pii(text: str) -> str:
    """Stand-in for the PII analyzer: long digit runs are personal values."""
    return re.sub(r"\d{6,}", "<NUM>", text)


@pytest.fixture
def deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Event ids from a counter, the ingest's clock at ``NOW``, the stand-in redactor, the
    intl suite."""
    import monitor.events
    import quanguard.services.scan
    import quanguard.usecases.audit

    monkeypatch.setenv("QUANGUARD_CRYPTO", "intl")  # the pinned hashes are SHA-256 ones
    counter = iter(range(1, 10**9))
    monkeypatch.setattr(monitor.events, "new_event_id",
                        lambda: hashlib.sha256(b"%d" % next(counter)).hexdigest()[:32])
    monkeypatch.setattr(quanguard.usecases.audit, "utc_now", lambda: NOW)
    monkeypatch.setattr(quanguard.services.scan, "make_redactor", lambda container: _fake_pii)


def _rows_digest(db: Path) -> tuple[str, str, int]:
    h = hashlib.sha256()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT seq, body, leaf_hash, prev_hash, hash FROM audit_events "
                            "ORDER BY seq").fetchall()
    for seq, body, leaf, prev, chain in rows:
        h.update(b"%d\x00" % seq + body.encode("utf-8") + b"\x00" + leaf + prev + chain)
    return h.hexdigest(), bytes(rows[-1][4]).hex(), len(rows)


def _alerts_digest(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT rule, severity, actor, dedup_key, window_start, window_end, seqs, count, "
            "summary, status FROM audit_alerts ORDER BY dedup_key, window_start").fetchall()
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def test_the_stored_trail_is_byte_identical_to_the_pinned_one(
        cli_run: Callable[..., Any], tmp_path: Path, deterministic: None) -> None:
    start = NOW - timedelta(days=3)
    (tmp_path / "a.ndjson").write_text(
        "\n".join(_mixed_lines(700, seed=15, start=start)) + "\n", encoding="utf-8")
    # CRLF line ends, no final newline, a line that is not UTF-8
    b_lines = [ln.encode("utf-8") for ln in
               _mixed_lines(300, seed=16, start=start + timedelta(days=1, hours=3))]
    b_lines.insert(40, b'{"ts": "\xff\xfe"}')
    (tmp_path / "b.ndjson").write_bytes(b"\r\n".join(b_lines))
    errors: list[dict[str, object]] = []
    for name, chunk in (("a.ndjson", "10000"), ("b.ndjson", "7")):
        r = cli_run("audit", "ingest", name, "--chunk", chunk, "--format", "json")
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        errors += [{"file": name, **e} for e in doc["errors"]]
    db = tmp_path / "var" / "quanguard.db"
    rows, head, count = _rows_digest(db)
    errors_digest = hashlib.sha256(json.dumps(errors, ensure_ascii=False).encode()).hexdigest()
    print(json.dumps({"rows": rows, "head": head, "count": count, "alerts": _alerts_digest(db),
                      "errors": errors_digest, "n_errors": len(errors)}))
    assert count > 900
    assert (rows, head) == (GOLDEN_ROWS, GOLDEN_HEAD), "the stored trail differs from the pinned one"
    assert errors_digest == GOLDEN_ERRORS, errors
    assert _alerts_digest(db) == GOLDEN_ALERTS
    r = cli_run("audit", "verify")
    assert r.exit_code == 0, r.output
