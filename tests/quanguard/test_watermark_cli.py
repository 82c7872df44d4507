"""`quanguard watermark embed/detect/copies` on a fresh folder, and the registry on both stores."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest
from typer.testing import Result

from quanguard.container import Container
from tests.watermark.attacks import csv_xlsx_csv, sample_table, shuffle


def test_embed_detect_contract(run: Callable[..., Result], tmp_path: Path) -> None:
    pacsv.write_csv(sample_table(2500, seed=8), tmp_path / "people.csv")
    for who in ("alice", "bob"):
        r = run("watermark", "embed", "people.csv", "-o", f"{who}.parquet", "--recipient", who,
                "--format", "json")
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert out["recipient"] == who and out["dataset"] == "people"
        assert out["marked_cells"] > 0 and len(out["output_digest"]) == 64
        assert out["formats_kept"] is True and "codeword" not in out
        assert all(c["relative_shift"] < 1e-3 for c in out["columns"] if c["kind"] == "numeric")
    assert oct((tmp_path / "keys" / "watermark.key").stat().st_mode & 0o777) == "0o600"
    from desensitize.tableio import open_writer, read_table

    leaked = csv_xlsx_csv(shuffle(read_table(tmp_path / "bob.parquet"), random.Random(1)),
                          random.Random(1))
    with open_writer(tmp_path / "found.csv") as w:
        w.write(leaked)
    r = run("watermark", "detect", "found.csv", "--dataset", "people", "--format", "json")
    assert r.exit_code == 0, r.output
    v = json.loads(r.stdout)
    assert set(v) >= {"verdict", "recipient", "p_value", "candidates", "evidence"}
    assert (v["verdict"], v["recipient"]) == ("match", "bob") and v["p_value"] < 1e-6
    assert {"rows_seen", "bits_recovered", "agreement", "p_value"} <= set(v["evidence"])
    r = run("watermark", "detect", "people.csv", "--format", "json")
    assert json.loads(r.stdout)["verdict"] == "none"
    r = run("watermark", "detect", "found.csv")
    assert r.exit_code == 0 and "match" in r.stdout and "bob" in r.stdout
    r = run("watermark", "copies", "--format", "json")
    assert sorted(c["recipient"] for c in json.loads(r.stdout)) == ["alice", "bob"]


@pytest.mark.parametrize("args,code,message", [
    (("watermark", "detect", "people.csv", "--dataset", "ghost"), 5, "no watermarked copy"),
    (("watermark", "detect", "missing.csv"), 2, "missing.csv"),
    (("watermark", "embed", "tiny.csv", "-o", "t2.csv", "--recipient", "x"), 2, "too small"),
    (("watermark", "embed", "people.csv", "-o", "p2.csv", "--recipient", "x", "--gamma", "0"),
     2, "gamma"),
    (("watermark", "embed", "people.csv", "-o", "p2.csv", "--recipient", "x",
      "--column", "nope"), 2, "not in the table"),
    (("watermark", "detect", "people.csv", "--alpha", "3"), 2, "alpha"),
    (("watermark", "embed", "people.csv", "-o", "p2.csv", "--recipient", "x",
      "--pseudonym-column", "nope"), 2, "not in the table"),
    (("watermark", "embed", "people.csv", "-o", "p2.csv", "--recipient", "x",
      "--pseudonym-column", "income"), 2, "named as pseudonyms"),
])
def test_errors_are_one_line(run: Callable[..., Result], tmp_path: Path, args: tuple[str, ...], code: int, message: str) -> None:
    pacsv.write_csv(sample_table(300, seed=8), tmp_path / "people.csv")
    pacsv.write_csv(sample_table(20, seed=8), tmp_path / "tiny.csv")
    assert run("watermark", "embed", "people.csv", "-o", "w.csv", "--recipient", "a").exit_code == 0
    r = run(*args)
    assert r.exit_code == code, r.output
    assert message in r.stderr and "Traceback" not in r.output
    assert r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "t2.csv").exists()


def test_small_table_with_canaries(run: Callable[..., Result], tmp_path: Path) -> None:
    pacsv.write_csv(sample_table(20, seed=8), tmp_path / "tiny.csv")
    r = run("watermark", "embed", "tiny.csv", "-o", "t.csv", "--recipient", "x",
            "--canaries", "2", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["canary_rows"] == 2
    r = run("watermark", "detect", "t.csv", "--format", "json")
    assert json.loads(r.stdout)["recipient"] == "x"


def test_registry_on_both_stores(any_container: Container) -> None:
    from watermark import embed_table, registry

    wm = any_container.watermarker
    out = wm.embed_table(sample_table(2000, seed=1), "市人社局")
    assert out.num_rows == 2000
    with any_container.session() as session, session.begin():
        _, rep = embed_table(sample_table(2000, seed=1), wm.secret, "市卫健委")
        registry.add_copy(session, dataset="people", report=rep, columns=["id"],
                          output_digest="0" * 64, issued_by="t")
    with any_container.session() as session:
        rows = registry.list_copies(session)
        assert [r.recipient for r in rows] == ["市人社局", "市卫健委"]
        assert rows[1].copy.plan == rep.plan and rows[1].issued_at.tzinfo is not None
        assert registry.datasets(session) == ["exchange-extract", "people"]
        assert [r.dataset for r in registry.list_copies(session, "people")] == ["people"]


def test_exchange_port_marks_small_extracts_with_canaries(container: Container) -> None:
    out = container.watermarker.embed_table(sample_table(25, seed=2), "市民政局")
    assert out.num_rows == 25 + 3


def test_sql_tables_in_and_out(run: Callable[..., Result], tmp_path: Path) -> None:
    from desensitize.tableio import open_writer

    with open_writer(f"sqlite:///{tmp_path / 'src.db'}#people") as w:
        w.write(sample_table(1500, seed=6))
    r = run("watermark", "embed", f"sqlite:///{tmp_path / 'src.db'}#people", "-o",
            f"sqlite:///{tmp_path / 'out.db'}#people", "--recipient", "市交通局",
            "--dataset", "people", "--format", "json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["output_digest"]) == 64
    r = run("watermark", "detect", f"sqlite:///{tmp_path / 'out.db'}#people", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["recipient"] == "市交通局"


def test_policy_denial_is_audited(run: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A consumer's key on the CLI: the policy says no, the refusal is in the audit trail."""
    pacsv.write_csv(sample_table(500, seed=8), tmp_path / "people.csv")
    key = run("keys", "create", "--role", "consumer", "--org", "某银行", "--name", "bank").stdout.strip()
    monkeypatch.setenv("QUANGUARD_API_KEY", key)
    r = run("watermark", "embed", "people.csv", "-o", "x.csv", "--recipient", "me")
    assert r.exit_code == 4 and r.stderr.startswith("error: policy does not allow watermark_embed")
    assert not (tmp_path / "x.csv").exists()
    r = run("watermark", "detect", "people.csv")
    assert r.exit_code == 4
    monkeypatch.delenv("QUANGUARD_API_KEY")
    from quanguard.cli.common import use_container

    with use_container() as container, container.session() as session:
        events = [json.loads(e.body) for e in container.audit.store.iter_range(session)]
    denied = [e for e in events if e["event"]["action"].startswith("watermark_")]
    assert {e["event"]["action"] for e in denied} == {"watermark_embed", "watermark_detect"}
    assert all(e["event"]["outcome"] == "failure" and e["audit"]["effect"] == "deny"
               for e in denied)


class _Tty:
    """stderr of a terminal: a progress bar is drawn into it."""

    def __init__(self) -> None:
        import io

        self.buf = io.StringIO()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.buf, name)

    def isatty(self) -> bool:
        return True


class _Sys:
    def __init__(self, err: _Tty) -> None:
        self.stderr = err

    def __getattr__(self, name: str) -> Any:
        import sys

        return getattr(sys, name)


def test_embed_and_detect_show_a_bar_with_percentage_and_eta_on_a_terminal(run: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from quanguard.cli import output

    pacsv.write_csv(sample_table(2500, seed=8), tmp_path / "people.csv")
    err = _Tty()
    monkeypatch.setattr(output, "sys", _Sys(err))
    r = run("watermark", "embed", "people.csv", "-o", "alice.csv", "--recipient", "alice", "--format", "json")
    assert r.exit_code == 0, r.output
    shown = err.buf.getvalue()
    assert "marking" in shown and "%" in shown and "ETA" in shown and "2500/2500" in shown
    assert json.loads(r.stdout)["recipient"] == "alice"  # stdout stays one JSON document
    err.buf.truncate(0)
    r = run("watermark", "detect", "alice.csv", "--format", "json")
    assert r.exit_code == 0, r.output
    shown = err.buf.getvalue()
    assert "reading" in shown and "%" in shown and "ETA" in shown and "2500/2500" in shown


def test_pseudonym_columns_of_a_masked_file(run: Callable[..., Result], tmp_path: Path) -> None:
    """Fakes named with --pseudonym-column carry marks; detect reads them from the plan."""
    import pyarrow as pa

    from tests.watermark.attacks import extract_table

    pacsv.write_csv(extract_table(3000, seed=9), tmp_path / "claims.csv")
    r = run("watermark", "embed", "claims.csv", "-o", "out.csv", "--recipient", "市医保局",
            "--pseudonym-column", "联系电话", "--pseudonym-column", "银行卡", "--format", "json")
    assert r.exit_code == 0, r.output
    kinds = {c["name"]: c["kind"] for c in json.loads(r.stdout)["plan"]["carriers"]}
    assert kinds["联系电话"] == kinds["银行卡"] == "pseudonym"
    marked = pacsv.read_csv(tmp_path / "out.csv", convert_options=pacsv.ConvertOptions(
        column_types={"联系电话": pa.string(), "银行卡": pa.string()}))
    keep = random.Random(4).sample(range(3000), 900)
    pacsv.write_csv(marked.take(pa.array(keep)).select(["银行卡"]), tmp_path / "found.csv")
    r = run("watermark", "detect", "found.csv", "--format", "json")
    assert r.exit_code == 0, r.output
    v = json.loads(r.stdout)
    assert (v["verdict"], v["recipient"]) == ("match", "市医保局") and v["p_value"] < 1e-6
