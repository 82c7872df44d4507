"""An allowed embed that then fails leaves its event: a column named that the table does
not have, pseudonym columns the watermark policy keeps unchanged, a table too small. The
attempt is in the audit trail with outcome failure and the reason."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest

from quanguard.auth import Principal
from quanguard.config import Settings
from quanguard.container import Container
from quanguard.usecases import watermark as uc
from tests.conftest import POLICY_DIR, make_settings
from tests.watermark.attacks import issue_table
from watermark import Params, WatermarkError


def _embed_events(container: Container) -> list[dict[str, Any]]:
    with container.session() as session:
        docs = [json.loads(e.body) for e in container.audit.store.iter_range(session)]
    return [d for d in docs if d["event"]["action"] == "watermark_embed"]


def _src(tmp_path: Path) -> str:
    path = tmp_path / "people.csv"
    pacsv.write_csv(issue_table(2000, seed=8), str(path))
    return str(path)


def test_a_named_column_missing_from_the_table_is_audited(
        container: Container, make_key: Callable[..., tuple[str, Principal]], tmp_path: Path) -> None:
    _, manager = make_key("manager")
    with pytest.raises(WatermarkError, match="nope"):
        uc.embed(container, manager, _src(tmp_path), str(tmp_path / "out.csv"), recipient="r1",
                 params=Params(columns=("nope",)))
    (event,) = _embed_events(container)
    assert event["event"]["outcome"] == "failure"
    assert "nope" in json.dumps(event, ensure_ascii=False)
    assert not (tmp_path / "out.csv").exists()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The shipped policies, with a default watermark profile that keeps pseudonyms."""
    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies)
    path = policies / "watermark.yaml"
    text = path.read_text(encoding="utf-8")
    assert "    pseudonyms: true\n" in text
    path.write_text(text.replace("    pseudonyms: true\n", "    pseudonyms: false\n"), encoding="utf-8")
    return make_settings(tmp_path, policy_dir=policies)


def test_pseudonym_columns_the_policy_keeps_are_refused_and_audited(
        container: Container, make_key: Callable[..., tuple[str, Principal]], tmp_path: Path) -> None:
    _, manager = make_key("manager")
    with pytest.raises(WatermarkError, match="keeps pseudonyms"):
        uc.embed(container, manager, _src(tmp_path), str(tmp_path / "out.csv"), recipient="r1",
                 params=Params(pseudonyms=("证件号",)))
    (event,) = _embed_events(container)
    assert event["event"]["outcome"] == "failure"
    assert "pseudonyms" in json.dumps(event, ensure_ascii=False)
