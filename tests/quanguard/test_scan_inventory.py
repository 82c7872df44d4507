"""The asset inventory on SQLite and PostgreSQL: versions per content, rescans replace."""

from __future__ import annotations

from typing import Any, cast

from desensitize.classify import ColumnReport, DatasetReport
from quanguard.container import Container
from quanguard.services.scan import get_asset, list_assets, save_asset


def _report(rows: int) -> DatasetReport:
    col = ColumnReport("SFZH", "CN_RESIDENT_ID", 1.0, 1.0, grade="L4")
    return DatasetReport((col,), rows, True, dataset_grade="L4")


def test_versions_follow_content(any_container: Container) -> None:
    with any_container.session() as s, s.begin():
        a1 = save_asset(s, dataset="社保", fingerprint="f1", source="a.csv", fmt="csv",
                        report=_report(10), owner_org="市人社局", scanned_by="p")
        a1b = save_asset(s, dataset="社保", fingerprint="f1", source="a.csv", fmt="csv",
                         report=_report(12), owner_org="市人社局", scanned_by="p")
        a2 = save_asset(s, dataset="社保", fingerprint="f2", source="a.csv", fmt="csv",
                        report=_report(20), owner_org="市人社局", scanned_by="p")
        save_asset(s, dataset="医保", fingerprint="f9", source="b.csv", fmt="csv",
                   report=_report(5), owner_org="市医保局", scanned_by="q")
    assert (a1.version, a1b.version, a2.version) == (1, 1, 2)
    assert a1b.id == a1.id and a1b.rows_scanned == 12
    with any_container.session() as s:
        assert [a.version for a in list_assets(s, dataset="社保")] == [2, 1]
        assert [a.dataset for a in list_assets(s, owner_org="市医保局")] == ["医保"]
        got = get_asset(s, a2.id)
        assert got is not None and cast(Any, got.report)["columns"][0]["entity"] == "CN_RESIDENT_ID"
        assert get_asset(s, "missing") is None
