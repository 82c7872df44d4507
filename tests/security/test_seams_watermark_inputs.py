"""Watermark inputs a careless user or an adversary chose: numbers nobody bounded, an
output that is the input, and errors that name the server's files.

What they did (an outside attack pass, findings F3-F6 and F11):

* F3 — asked for ``gamma`` 2**63 (HTTP) or 10**23 (CLI): one mark in more cells than a
  64-bit selector can count. The HTTP answer was a 500, the CLI exited 70 "internal
  error (OverflowError)".
* F4 — asked ``watermark detect`` to accuse at ``alpha`` 1e-308 (CLI) or 5e-324 (HTTP),
  valid floats in (0, 1): the bits a detection needs became infinite, exit 70 or a 500.
* F5 — asked for 300 000 canary rows on a 400-row table (35 s, 475 MB, a "copy" that
  was 99.9% fake), and 2**64 over HTTP, which pinned a worker.
* F6 — ran ``watermark embed same.csv -o same.csv``: the input was silently replaced by
  its marked copy (exit 0); through a symbolic or a hard link too.
* F11 — uploaded a file the server could not read to ``/v1/scan`` or
  ``/v1/watermark/*``: the error named the server's temp file (``tmpwvktwxtc.docx: …``).

Every numeric parameter now has one allowed range, held by :class:`watermark.Params`
(and :func:`watermark.check_alpha`), so the CLI, HTTP and the Python API refuse the same
values with the same message, which names the range; the OpenAPI schema states it. Each
refusal is a 400 JSON error or exit 2, leaves exactly one audit event, and no output,
partial file or temp file behind.
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest
from fastapi.testclient import TestClient
from typer.testing import Result

from quanguard.api.app import create_app
from quanguard.auth import LOCAL_OPERATOR, create_key
from quanguard.container import Container, build_container
from quanguard.errors import InvalidInput
from tests.conftest import csv_bytes, make_settings
from tests.watermark.attacks import sample_table
from watermark import Params, WatermarkError

# The allowed ranges (README, "Watermark options"; watermark.models holds them).
GAMMA_MAX = 10_000  # about one cell in gamma carries a mark: 1..10 000
CANARIES_MAX = 1_000  # fake rows appended for a table too small for marks: 0..1 000
ALPHA_MIN = 1e-30  # accusation level: [1e-30, 1)

World = tuple[TestClient, Container, dict[str, str]]
TEMP_NAME = re.compile(r"tmp[a-z0-9_]{6,}", re.IGNORECASE)


# -- helpers ------------------------------------------------------------------------------
@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    container = build_container(make_settings(tmp_path, auth_fail_limit=1_000_000))
    keys: dict[str, str] = {}
    with container.session() as s, s.begin():
        for role in ("manager", "provider", "auditor"):
            keys[role] = create_key(s, role=role, org="市大数据局", name=f"{role}-1").key
    container.audit.set_redactor(lambda text: text)  # records, not the PII analyzer, are tested
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client, container, keys
    container.close()


def _events(container: Container) -> list[dict[str, Any]]:
    with container.session() as session:
        return [json.loads(e.body) for e in container.audit.store.iter_range(session)]


def _spooled(container: Container) -> set[str]:
    """Files in the data folder other than the store and the keys (uploads spool there)."""
    root = Path(container.settings.data_dir)
    return {p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("quanguard.db")}


def _post(world: World, url: str, role: str, *, name: str, data: bytes,
          fields: dict[str, str] | None = None) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """POST a multipart upload; (status, JSON body, the events of this request). Asserts
    that nothing was left in the data folder."""
    client, container, keys = world
    before = _spooled(container)
    rid = uuid.uuid4().hex
    r = client.post(url, headers={"Authorization": f"Bearer {keys[role]}", "X-Request-ID": rid},
                    files={"file": (name, data)}, data=fields or {})
    assert _spooled(container) == before, "an upload or a marked copy was left on the server"
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    docs = [e for e in _events(container) if e.get("trace", {}).get("id") == rid]
    return r.status_code, body, docs


def _refused(status: int, body: dict[str, Any], docs: list[dict[str, Any]], *words: str) -> str:
    """A 400 in the error envelope, recorded once as a failed attempt; the message."""
    assert status == 400, body
    assert set(body) == {"error"} and {"kind", "message", "request_id"} <= set(body["error"])
    err = body["error"]
    assert err["kind"] == "invalid"
    for word in words:
        assert word in err["message"], err["message"]
    assert len(docs) == 1, [d["event"]["action"] for d in docs]
    assert docs[0]["event"]["outcome"] == "failure"
    assert docs[0]["audit"]["effect"] == "error"
    return str(err["message"])


PEOPLE = csv_bytes(sample_table(2000, seed=8))


def _issue(world: World) -> None:
    """One registered copy, so that detection gets as far as reading the suspect."""
    status, _, _ = _post(world, "/v1/watermark/embed", "manager", name="people.csv", data=PEOPLE,
                         fields={"recipient": "r0", "dataset": "people"})
    assert status == 200


# -- the CLI ------------------------------------------------------------------------------
@pytest.fixture
def cli(cli_run: Callable[..., Result], tmp_path: Path) -> Callable[..., tuple[Result, list[dict[str, Any]]]]:
    """``cli(*args)``: run the CLI in ``tmp_path`` (store in ``tmp_path/var``); (result,
    the events the run left)."""
    pacsv.write_csv(sample_table(2000, seed=8), tmp_path / "people.csv")
    pacsv.write_csv(sample_table(400, seed=9), tmp_path / "small.csv")
    pacsv.write_csv(sample_table(20, seed=8), tmp_path / "tiny.csv")

    def events() -> list[dict[str, Any]]:
        container = build_container(make_settings(tmp_path))
        try:
            return _events(container)
        finally:
            container.close()

    def run(*args: str) -> tuple[Result, list[dict[str, Any]]]:
        before = len(events())
        result = cli_run(*args)
        return result, events()[before:]

    return run


def _cli_refused(result: Result, new: list[dict[str, Any]], *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert result.stderr.startswith("error:") and len(result.stderr.strip().splitlines()) == 1
    for word in words:
        assert word in result.stderr, result.stderr
    assert len(new) == 1, [e["event"]["action"] for e in new]
    assert new[0]["event"]["outcome"] == "failure"


def _listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name != "var"}


# -- F3: gamma ----------------------------------------------------------------------------
@pytest.mark.parametrize("gamma", [str(2**63), "99999999999999999999999", str(GAMMA_MAX + 1), "0", "-5"])
def test_http_gamma_out_of_range_is_400_naming_the_range(world: World, gamma: str) -> None:
    status, body, docs = _post(world, "/v1/watermark/embed", "provider", name="people.csv",
                               data=PEOPLE, fields={"recipient": "r1", "gamma": gamma})
    _refused(status, body, docs, "gamma", f"{GAMMA_MAX}")


@pytest.mark.parametrize("gamma", ["99999999999999999999999", str(2**63), str(GAMMA_MAX + 1)])
def test_cli_gamma_out_of_range_is_exit_2_and_writes_nothing(cli: Any, tmp_path: Path, gamma: str) -> None:
    before = _listing(tmp_path)
    result, new = cli("watermark", "embed", "people.csv", "-o", "g.csv", "--recipient", "r3",
                      "--gamma", gamma)
    _cli_refused(result, new, "gamma", f"{GAMMA_MAX}")
    assert _listing(tmp_path) == before  # no g.csv, no .g.csv.*.part


def test_the_largest_gamma_is_accepted_and_says_the_table_is_too_small(cli: Any, tmp_path: Path) -> None:
    result, new = cli("watermark", "embed", "people.csv", "-o", "g.csv", "--recipient", "r3",
                      "--gamma", str(GAMMA_MAX))
    assert result.exit_code == 2 and "too small" in result.stderr, result.output
    assert len(new) == 1 and not (tmp_path / "g.csv").exists()


# -- F4: alpha ----------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", ["5e-324", "1e-308", "1e-31", "0", "1", "nan", "inf", "-1e-6"])
def test_http_alpha_out_of_range_is_400_naming_the_range(world: World, alpha: str) -> None:
    _issue(world)
    status, body, docs = _post(world, "/v1/watermark/detect", "auditor", name="people.csv",
                               data=PEOPLE, fields={"alpha": alpha})
    _refused(status, body, docs, "alpha", f"{ALPHA_MIN:g}")


@pytest.mark.parametrize("alpha", ["1e-308", "5e-324", "1e-31"])
def test_cli_alpha_out_of_range_is_exit_2(cli: Any, alpha: str) -> None:
    result, _ = cli("watermark", "embed", "people.csv", "-o", "w.csv", "--recipient", "a")
    assert result.exit_code == 0, result.output
    result, new = cli("watermark", "detect", "people.csv", "--alpha", alpha)
    _cli_refused(result, new, "alpha", f"{ALPHA_MIN:g}")


def test_the_smallest_alpha_is_accepted(cli: Any) -> None:
    result, _ = cli("watermark", "embed", "people.csv", "-o", "w.csv", "--recipient", "a")
    assert result.exit_code == 0, result.output
    result, new = cli("watermark", "detect", "w.csv", "--alpha", f"{ALPHA_MIN!r}", "--format", "json")
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["evidence"]["alpha"] == ALPHA_MIN and verdict["recipient"] == "a"
    assert [e["event"]["action"] for e in new] == ["watermark_detect"]


def test_python_api_detect_refuses_a_tiny_alpha_and_records_it(container: Container, tmp_path: Path) -> None:
    from quanguard.usecases import watermark as uc

    src = tmp_path / "people.csv"
    src.write_bytes(PEOPLE)
    uc.embed(container, LOCAL_OPERATOR, str(src), str(tmp_path / "w.csv"), recipient="a")
    before = len(_events(container))
    with pytest.raises(WatermarkError, match="alpha"):
        uc.detect(container, LOCAL_OPERATOR, str(src), alpha=1e-308)
    (event,) = _events(container)[before:]
    assert event["event"]["action"] == "watermark_detect" and event["event"]["outcome"] == "failure"
    assert "alpha" in json.dumps(event)


# -- F5: canaries -------------------------------------------------------------------------
@pytest.mark.parametrize("canaries", [str(2**64), "300000", str(CANARIES_MAX + 1), "-1"])
def test_http_canaries_out_of_range_is_400_naming_the_limit(world: World, canaries: str) -> None:
    status, body, docs = _post(world, "/v1/watermark/embed", "provider", name="small.csv",
                               data=csv_bytes(sample_table(400, seed=9)),
                               fields={"recipient": "r1", "canaries": canaries})
    _refused(status, body, docs, "canaries", f"{CANARIES_MAX}")


def test_cli_canaries_out_of_range_is_exit_2_at_once(cli: Any, tmp_path: Path) -> None:
    before = _listing(tmp_path)
    result, new = cli("watermark", "embed", "small.csv", "-o", "c.csv", "--recipient", "r1",
                      "--canaries", "300000")
    _cli_refused(result, new, "canaries", f"{CANARIES_MAX}")
    assert _listing(tmp_path) == before


def test_the_most_canaries_are_accepted(cli: Any) -> None:
    result, new = cli("watermark", "embed", "tiny.csv", "-o", "t.csv", "--recipient", "x",
                      "--canaries", str(CANARIES_MAX), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["canary_rows"] == CANARIES_MAX
    assert [e["event"]["action"] for e in new] == ["watermark_embed"]


# -- every bound, at the Params level (CLI, HTTP and the Python API share it) -------------
@pytest.mark.parametrize(("field", "value"), [
    ("gamma", 0), ("gamma", GAMMA_MAX + 1), ("gamma", 2**63), ("gamma", 8.5), ("gamma", True),
    ("canaries", -1), ("canaries", CANARIES_MAX + 1), ("canaries", 2**64),
    ("code_bits", 63), ("code_bits", 4097), ("code_bits", 2**40),
    ("min_digits", 0), ("min_digits", 16),
    ("max_recipients", 0), ("max_recipients", 10**6 + 1),
    ("alpha", 0.0), ("alpha", 5e-324), ("alpha", 1e-308), ("alpha", 1.0), ("alpha", math.nan),
    ("max_rel_error", math.inf), ("max_drift", math.nan), ("max_step", 10**7), ("max_step", 10**400),
])
def test_params_refuse_every_value_out_of_range(field: str, value: object) -> None:
    with pytest.raises(WatermarkError, match=field) as caught:
        Params(**{field: value})  # type: ignore[arg-type]
    assert len(str(caught.value)) < 300  # a 400-digit number is not echoed whole


def test_the_bounds_are_the_library_s() -> None:
    from watermark import models

    assert (models.GAMMA_MAX, models.CANARIES_MAX, models.ALPHA_MIN) == (GAMMA_MAX, CANARIES_MAX, ALPHA_MIN)


def test_params_accept_the_bounds_themselves() -> None:
    Params(gamma=1, canaries=0, code_bits=64, min_digits=1, max_recipients=1, alpha=ALPHA_MIN)
    Params(gamma=GAMMA_MAX, canaries=CANARIES_MAX, code_bits=4096, min_digits=15,
           max_recipients=10**6, alpha=0.999, max_step=10**6)


def test_openapi_states_the_bounds(world: World) -> None:
    client, _, _ = world
    spec = client.get("/openapi.json").json()

    def form(path: str) -> dict[str, Any]:
        props: dict[str, Any] = (spec["paths"][path]["post"]["requestBody"]["content"]
                                 ["multipart/form-data"]["schema"]["properties"])
        return props

    embed = form("/v1/watermark/embed")
    assert (embed["gamma"]["minimum"], embed["gamma"]["maximum"]) == (1, GAMMA_MAX)
    assert (embed["canaries"]["minimum"], embed["canaries"]["maximum"]) == (0, CANARIES_MAX)
    alpha = form("/v1/watermark/detect")["alpha"]
    assert alpha["minimum"] == ALPHA_MIN and alpha["exclusiveMaximum"] == 1
    assert "exclusiveMinimum" not in alpha


# -- F6: the output is the input ----------------------------------------------------------
@pytest.mark.parametrize(("src", "out", "link"), [
    ("same.csv", "same.csv", None),
    ("same.csv", "./same.csv", None),
    ("link.csv", "same.csv", "symlink"),
    ("same.csv", "link.csv", "symlink"),
    ("same.csv", "hard.csv", "hardlink"),
])
def test_cli_refuses_to_overwrite_its_input(cli: Any, tmp_path: Path, src: str, out: str,
                                            link: str | None) -> None:
    same = tmp_path / "same.csv"
    same.write_bytes(PEOPLE)
    if link == "symlink":
        (tmp_path / "link.csv").symlink_to("same.csv")
    elif link == "hardlink":
        os.link(same, tmp_path / "hard.csv")
    before = _listing(tmp_path)
    result, new = cli("watermark", "embed", src, "-o", out, "--recipient", "r1")
    _cli_refused(result, new, "overwrite the input")
    assert same.read_bytes() == PEOPLE
    assert _listing(tmp_path) == before
    assert new[0]["event"]["action"] == "watermark_embed"


def test_python_api_refuses_to_overwrite_its_input(container: Container, tmp_path: Path) -> None:
    from quanguard.usecases import watermark as uc

    src = tmp_path / "same.csv"
    src.write_bytes(PEOPLE)
    with pytest.raises(InvalidInput, match="overwrite the input"):
        uc.embed(container, LOCAL_OPERATOR, str(src), str(src), recipient="r1")
    assert src.read_bytes() == PEOPLE
    (event,) = _events(container)
    assert event["event"]["action"] == "watermark_embed" and event["event"]["outcome"] == "failure"
    assert "overwrite the input" in json.dumps(event)


def test_sql_target_that_is_the_source_is_refused(cli: Any, tmp_path: Path) -> None:
    from desensitize.tableio import open_writer, read_table

    url = f"sqlite:///{tmp_path / 'src.db'}#people"
    with open_writer(url) as w:
        w.write(sample_table(1500, seed=6))
    original = read_table(url)
    result, new = cli("watermark", "embed", url, "-o", url, "--recipient", "r1", "--dataset", "people")
    _cli_refused(result, new, "overwrite the input")
    assert read_table(url).equals(original)


# -- F11: no server file names in errors --------------------------------------------------
@pytest.mark.parametrize(("url", "role", "name", "fields"), [
    ("/v1/scan", "provider", "x.docx", {}),
    ("/v1/scan", "provider", "x.xlsx", {}),
    ("/v1/watermark/embed", "provider", "big.xlsx", {"recipient": "r1"}),
    ("/v1/watermark/embed", "provider", "big.parquet", {"recipient": "r1"}),
    ("/v1/watermark/detect", "auditor", "big.xlsx", {}),
    ("/v1/watermark/detect", "auditor", "big.parquet", {}),
])
def test_upload_errors_name_the_upload_not_a_temp_file(world: World, url: str, role: str, name: str,
                                                       fields: dict[str, str]) -> None:
    if "detect" in url:
        _issue(world)
    status, body, docs = _post(world, url, role, name=name, data=PEOPLE, fields=fields)
    message = _refused(status, body, docs)
    assert not TEMP_NAME.search(message), message
    assert str(Path(world[1].settings.data_dir)) not in message
    assert name in message, message
    assert not TEMP_NAME.search(json.dumps(docs[0], ensure_ascii=False)), docs[0]  # nor the record


def test_cli_detect_with_no_copy_issued_leaves_the_use_case_s_one_event(cli: Any) -> None:
    result, new = cli("watermark", "detect", "people.csv")
    assert result.exit_code == 5 and "no watermarked copy" in result.stderr, result.output
    (event,) = new
    assert event["event"]["action"] == "watermark_detect" and event["event"]["outcome"] == "failure"
    assert event["audit"]["effect"] == "error" and "no watermarked copy" in event["event"]["reason"]
