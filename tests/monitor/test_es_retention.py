"""Retention of the Elasticsearch copy: ILM when the cluster has it, a fallback otherwise."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.es import EsSink, ilm_available, index_pattern, make_client
from monitor.retention_es import (
    MODE_FALLBACK,
    MODE_ILM,
    apply_retention,
    ilm_policy,
    install_ilm,
    policy_name,
)
from tests.es_fixture import EsServer, make_events

NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
DAYS = 180
CUTOFF = NOW - timedelta(days=DAYS)  # 2026-06-18T12:00Z


def spread_events(n: int) -> list[Any]:
    """Events every 6 hours from 2026-04-01 (before the cutoff) to past it."""
    start = datetime(2026, 4, 1, tzinfo=UTC)
    return [replace(e, ts=start + timedelta(hours=6 * i))
            for i, e in enumerate(make_events(n, seed=11))]


@pytest.mark.es
def test_stand_in_without_ilm_falls_back_without_crashing(es_server: EsServer,
                                                          es_prefix: str) -> None:
    client = make_client(es_server.url)
    if ilm_available(client):
        pytest.skip("this cluster has ILM; the fallback is tested with the stand-in")
    sink = EsSink(client, prefix=es_prefix)
    sink.ensure_template()
    events = spread_events(400)  # 2026-04-01 .. 2026-07-10
    sink.write(events, refresh=True)
    assert install_ilm(client, prefix=es_prefix, retention_days=DAYS) is None

    outcome = apply_retention(client, prefix=es_prefix, retention_days=DAYS, now=NOW)

    assert outcome.mode == MODE_FALLBACK
    assert outcome.cutoff == CUTOFF
    # April and May lie wholly before the cutoff: their indices are dropped whole.
    assert outcome.deleted_indices == (f"{es_prefix}-events-2026.04", f"{es_prefix}-events-2026.05")
    june_old = [e for e in events if e.ts.month == 6 and e.ts < CUTOFF]
    assert outcome.deleted_documents == len(june_old)
    client.indices.refresh(index=index_pattern(es_prefix))
    kept = sum(1 for e in events if e.ts >= CUTOFF)
    assert sink.count() == kept
    # Running it again is a no-op, not an error.
    again = apply_retention(client, prefix=es_prefix, retention_days=DAYS, now=NOW)
    assert (again.deleted_indices, again.deleted_documents) == ((), 0)
    assert sink.count() == kept
    client.close()


class _Meta:
    def __init__(self, status: int) -> None:
        self.status = status


class _IlmClient:
    """Records calls; answers the ILM API like a cluster that has (or forbids) it."""

    def __init__(self, ilm_status: int = 200) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.ilm_status = ilm_status
        outer = self

        class Ilm:
            def get_status(self) -> dict[str, Any]:
                outer.calls.append(("ilm.get_status", {}))
                if outer.ilm_status != 200:
                    from elasticsearch import ApiError

                    raise ApiError("security_exception", meta=_Meta(outer.ilm_status),  # type: ignore[arg-type]
                                   body={"error": "forbidden"})
                return {"operation_mode": "RUNNING"}

            def put_lifecycle(self, **kw: Any) -> dict[str, Any]:
                outer.calls.append(("ilm.put_lifecycle", kw))
                return {"acknowledged": True}

        class Indices:
            def put_settings(self, **kw: Any) -> dict[str, Any]:
                outer.calls.append(("indices.put_settings", kw))
                return {"acknowledged": True}

            def get(self, **kw: Any) -> dict[str, Any]:
                outer.calls.append(("indices.get", kw))
                return {}

            def delete(self, **kw: Any) -> dict[str, Any]:
                raise AssertionError("ILM mode never deletes indices itself")

        self.ilm = Ilm()
        self.indices = Indices()

    def delete_by_query(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("delete_by_query", kw))
        return {"deleted": 0}


def test_cluster_with_ilm_gets_a_delete_phase_policy() -> None:
    client = _IlmClient()
    outcome = apply_retention(client, prefix="qg", retention_days=DAYS, now=NOW)
    assert outcome.mode == MODE_ILM
    names = [c[0] for c in client.calls]
    assert "delete_by_query" not in names
    put = dict(client.calls)["ilm.put_lifecycle"]
    assert put["name"] == policy_name("qg")
    assert put["policy"]["phases"]["delete"] == {"min_age": "180d", "actions": {"delete": {}}}
    settings = dict(client.calls)["indices.put_settings"]
    assert settings["settings"]["index"]["lifecycle"]["name"] == "qg-retention"


@pytest.mark.parametrize("status", [403, 404, 400])
def test_ilm_forbidden_or_missing_falls_back(status: int) -> None:
    client = _IlmClient(ilm_status=status)
    outcome = apply_retention(client, prefix="qg", retention_days=DAYS, now=NOW)
    assert outcome.mode == MODE_FALLBACK
    assert "ilm.put_lifecycle" not in [c[0] for c in client.calls]


def test_ilm_policy_body_names_the_retention() -> None:
    assert ilm_policy(365)["phases"]["delete"]["min_age"] == "365d"


@pytest.mark.es
def test_template_carries_the_policy_when_ilm_is_used(es_server: EsServer, es_prefix: str) -> None:
    client = make_client(es_server.url)
    sink = EsSink(client, prefix=es_prefix, ilm_policy=policy_name(es_prefix))
    sink.ensure_template()
    event = make_events(1)[0]
    sink.write([event], refresh=True)
    settings = client.indices.get_settings(index=index_pattern(es_prefix))
    index_settings = next(iter(settings.values()))["settings"]["index"]
    assert index_settings["lifecycle"]["name"] == policy_name(es_prefix)
    # Age counts from the end of the event's month.
    assert int(index_settings["lifecycle"]["origination_date"]) == int(
        datetime(2026, 4, 1, tzinfo=UTC).timestamp() * 1000)
    client.close()
