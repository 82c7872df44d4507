"""Elasticsearch: the scale-out search copy of the audit trail.

The SQL store is the source of truth and the spool; this module holds what talks to
Elasticsearch through the official client, using only the public REST API (index
templates, ``bulk`` with the ``create`` op, ``search`` with bool filters, ``terms`` and
``date_histogram`` aggregations), so the stand-in used in tests and a real cluster run the
same code.

Supported cluster major: the major version of the installed ``elasticsearch`` client
(pinned to 8.x in pyproject.toml). The client sends ``compatible-with=<major>`` headers, and
a cluster of another major refuses them or answers in another dialect, so
:func:`check_cluster` refuses a mismatch up front with a message saying what to do.

Layout in the cluster (``prefix`` defaults to ``quanguard-audit``):

* an index template named ``prefix`` for ``prefix-events-*``: keyword ids and filters,
  ``date`` timestamps, ``text`` purpose/reason with ``keyword`` sub-fields for substring
  search, ``dynamic: false`` (unknown fields stay in ``_source``, unindexed);
* one index per calendar month of the event time (UTC), ``prefix-events-YYYY.MM``.
  Routing by the event's own time is deterministic, so the ``_id`` (the event id) is unique
  in the one index the event can land in and a retried ``create`` answers 409, never a
  duplicate. (A data stream would route by arrival and could duplicate an event across
  backing indices after a rollover; whole-month indices also make retention by index
  deletion exact.)

Searching the copy is ``monitor.es_search.EsSearchBackend``.

Indexed documents are ``AuditEvent.to_document()`` plus ``quanguard.ts_us`` (the
timestamp in integer microseconds: ``date`` fields keep milliseconds, and sort order and
``since``/``until`` bounds must be exact to the microsecond to match the SQL backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.errors import MonitorError
from monitor.events import AuditEvent

DEFAULT_PREFIX = "quanguard-audit"
SCHEMA_VERSION = 2  # 2: Elastic Common Schema (source.ip as ip, user.name, labels.*)
ECS_VERSION = "8.12.0"
_KEYWORD_MAX = 8191

class EsError(MonitorError):
    """Base of the Elasticsearch adapter's errors."""

    kind = "unavailable"


class EsUnavailable(EsError):
    """The cluster cannot be reached, timed out or is overloaded (retry later)."""

    kind = "unavailable"


class EsIncompatible(EsError):
    """The cluster's major version does not match the client's; nothing is sent to it."""

    kind = "invalid"


class EsRejected(EsError):
    """The cluster refused a request or a document for good (mapping, bad request)."""

    kind = "invalid"


def client_version() -> str:
    from elasticsearch._version import __versionstr__

    return str(__versionstr__)


def client_major() -> int:
    return int(client_version().split(".")[0])


def make_client(url: str, *, timeout: float = 10.0) -> Any:
    """An ``Elasticsearch`` client without its own retries (callers back off themselves)."""
    from elasticsearch import Elasticsearch

    return Elasticsearch(url, request_timeout=timeout, max_retries=0, retry_on_timeout=False)


@dataclass(frozen=True)
class ClusterInfo:
    """What :func:`check_cluster` learned; reported in the startup log and audit status."""

    url: str
    name: str
    version: str
    health: str
    client_version: str
    ilm: bool

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "cluster": self.name, "version": self.version,
                "health": self.health, "client_version": self.client_version, "ilm": self.ilm}


def translate(exc: Exception, doing: str) -> EsError:
    """Map a client exception to ours (the one border for third-party errors)."""
    from elastic_transport import ConnectionError as TransportConnectionError
    from elastic_transport import ConnectionTimeout, TransportError
    from elasticsearch import ApiError

    if isinstance(exc, ConnectionTimeout | TransportConnectionError):
        return EsUnavailable(f"Elasticsearch unreachable while {doing}: {exc}")
    if isinstance(exc, ApiError):
        status = exc.meta.status if exc.meta is not None else 0
        if status == 429 or status >= 500:
            return EsUnavailable(f"Elasticsearch busy while {doing} ({status}): {exc.message}")
        return EsRejected(f"Elasticsearch refused {doing} ({status}): {exc.message}")
    if isinstance(exc, TransportError):
        return EsUnavailable(f"Elasticsearch transport error while {doing}: {exc}")
    return EsUnavailable(f"Elasticsearch error while {doing}: {exc!r}")


def call_es(doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    try:
        return fn(*args, **kwargs)
    except (ApiError, TransportError) as exc:
        raise translate(exc, doing) from exc


def ilm_available(client: Any) -> bool:
    """True when the cluster serves the ILM API (the stand-in and some distributions do not)."""
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    try:
        client.ilm.get_status()
    except ApiError as exc:
        status = exc.meta.status if exc.meta is not None else 0
        if status in (400, 404, 405, 410, 501):  # "no handler found for uri": no ILM here
            return False
        if status in (401, 403):  # ILM exists but we may not use it: fall back as well
            return False
        raise translate(exc, "asking for ILM status") from exc
    except TransportError as exc:
        raise translate(exc, "asking for ILM status") from exc
    return True


def check_cluster(client: Any, url: str = "") -> ClusterInfo:
    """Return the cluster's version and health, or raise.

    Raises EsUnavailable (unreachable) or EsIncompatible (major version differs from the
    client's, or the cluster refuses the client's compatibility headers).
    """
    mine = client_major()
    try:
        info = call_es("reading cluster info", client.info)
    except EsRejected as exc:
        if "media_type" in str(exc) or "compatible-with" in str(exc):
            raise EsIncompatible(
                f"the cluster at {url or 'the configured URL'} refuses the Elasticsearch "
                f"{mine}.x client's headers; quanguard supports Elasticsearch {mine}.x "
                f"clusters") from exc
        raise
    version = str(info["version"]["number"])
    major = int(version.split(".")[0])
    if major != mine:
        raise EsIncompatible(
            f"Elasticsearch at {url or 'the configured URL'} is version {version}, but this "
            f"build uses the {client_version()} client and supports only "
            f"{mine}.x clusters; point QUANGUARD_ES_URL at an {mine}.x cluster or install "
            f"the matching client (elasticsearch>={major},<{major + 1})")
    health = call_es("reading cluster health", client.cluster.health)
    return ClusterInfo(url=url, name=str(info.get("cluster_name", "")), version=version,
                       health=str(health.get("status", "unknown")),
                       client_version=client_version(),
                       ilm=ilm_available(client))


# --- index layout ------------------------------------------------------------------

_KW: dict[str, Any] = {"type": "keyword", "ignore_above": _KEYWORD_MAX}  # never a 32 KiB term error
_TEXT: dict[str, Any] = {"type": "text",
                         "fields": {"kw": {"type": "keyword", "ignore_above": _KEYWORD_MAX}}}
# ECS keyword with a full-text sub-field (ECS itself adds ``.text`` sub-fields this way).
_KW_TEXT: dict[str, Any] = {**_KW, "fields": {"text": {"type": "match_only_text"}}}
_DATE: dict[str, Any] = {"type": "date"}
_LONG: dict[str, Any] = {"type": "long"}

# Elastic Common Schema fields (``ECS_VERSION``; every one of them is checked against the
# pinned ECS field reference in tests/data/ecs) plus two namespaces of our own that ECS
# leaves to users: ``audit.*`` (what was accessed and under which decision) and
# ``quanguard.*`` (microsecond time for exact ordering).
MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "dynamic_templates": [
        # ECS ``labels``: string values, indexed as keywords whatever their key.
        {"labels_as_keywords": {"path_match": "labels.*", "match_mapping_type": "string",
                                "mapping": {"type": "keyword", "ignore_above": 1024}}},
    ],
    "properties": {
        "@timestamp": _DATE,
        "ecs": {"properties": {"version": _KW}},
        "event": {"properties": {
            "id": _KW, "sequence": _LONG, "action": _KW, "outcome": _KW, "kind": _KW,
            "category": _KW, "type": _KW, "ingested": _DATE, "reason": _KW}},
        "user": {"properties": {"id": _KW, "name": _KW_TEXT, "roles": _KW}},
        "organization": {"properties": {"name": _KW_TEXT}},
        # ignore_malformed: a reporter's odd address must not stop shipping; the event
        # stays searchable by everything else and whole in _source.
        "source": {"properties": {"ip": {"type": "ip", "ignore_malformed": True}}},
        "trace": {"properties": {"id": _KW}},
        "rule": {"properties": {"id": _KW, "version": _KW}},
        "labels": {"type": "object", "dynamic": True},
        "audit": {"properties": {
            "reporter": _KW, "dataset": _KW, "fields": _KW, "grade": _KW,
            "rows": _LONG, "purpose": _TEXT, "effect": _KW, "result_digest": _KW}},
        "quanguard": {"properties": {"ts_us": _LONG}},
    },
}
CUSTOM_NAMESPACES = ("audit", "quanguard")

_CATEGORIES: dict[str, tuple[str, str]] = {
    "login": ("authentication", "start"),
    "key_create": ("iam", "creation"), "key_revoke": ("iam", "deletion"),
    "key_admin": ("iam", "admin"),
    "policy_reload": ("configuration", "change"), "policy_admin": ("configuration", "change"),
}


def ecs_categorization(event: AuditEvent) -> dict[str, Any]:
    """``event.kind``/``category``/``type`` of an audit event, from ECS's allowed values:
    sign-ins are ``authentication``/``start``, key management ``iam``, policy changes
    ``configuration``; every other action is an ``api`` access, ``allowed`` or
    ``denied`` by its decision (both are expected types of the ``api`` category)."""
    category, kind = _CATEGORIES.get(event.action, ("api", "access"))
    types = [kind]
    if category == "api":
        if event.effect == "deny":
            types.append("denied")
        elif event.effect == "allow":
            types.append("allowed")
    return {"kind": "event", "category": [category], "type": types}


def index_pattern(prefix: str) -> str:
    return f"{prefix}-events-*"


def index_for(prefix: str, ts: datetime) -> str:
    utc = ts.astimezone(UTC)
    return f"{prefix}-events-{utc.year:04d}.{utc.month:02d}"


def month_end_ms(index: str) -> int:
    """Epoch ms of the first instant after the month an index holds."""
    year, month = (int(p) for p in index.rsplit("-", 1)[1].split("."))
    nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return int(nxt.timestamp() * 1000)


def index_template(prefix: str, *, ilm_policy: str | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {"number_of_shards": 1, "auto_expand_replicas": "0-1"}
    if ilm_policy:
        settings["lifecycle"] = {"name": ilm_policy}
    return {
        "index_patterns": [index_pattern(prefix)],
        "priority": 200,
        "template": {"settings": {"index": settings}, "mappings": MAPPINGS},
        "meta": {"managed_by": "quanguard", "schema_version": SCHEMA_VERSION},
    }


def ts_us(ts: datetime) -> int:
    delta = ts.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_es_document(event: AuditEvent) -> dict[str, Any]:
    if event.seq is None:
        raise ValueError("only stored events (with a seq) are shipped")
    doc = event.to_document()
    doc["quanguard"] = {"ts_us": ts_us(event.ts)}
    doc["ecs"] = {"version": ECS_VERSION}
    doc["event"] = {**doc["event"], **ecs_categorization(event)}
    return doc


# --- writing -------------------------------------------------------------------------

@dataclass(frozen=True)
class WriteResult:
    created: int
    existing: int  # already in the cluster (an earlier try got through): not duplicated


class EsSink:
    """Writes stored events into the cluster; every write may be retried safely."""

    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX,
                 ilm_policy: str | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.ilm_policy = ilm_policy
        self._indices: set[str] = set()

    def ensure_template(self) -> None:
        body = index_template(self.prefix, ilm_policy=self.ilm_policy)
        call_es("installing the index template", self.client.indices.put_index_template,
              name=self.prefix, index_patterns=body["index_patterns"],
              priority=body["priority"], template=body["template"], meta=body["meta"])

    def _ensure_index(self, index: str) -> None:
        if index in self._indices:
            return
        from elasticsearch import BadRequestError

        # The ILM age of a month's index counts from the end of that month, so that it is
        # deleted `retention` after its newest event, not after its creation.
        settings = {"index": {"lifecycle": {"origination_date": month_end_ms(index)}}}
        try:
            call_es(f"creating index {index}", self.client.indices.create, index=index,
                  settings=settings if self.ilm_policy else None)
        except EsRejected as exc:
            cause = exc.__cause__
            if not (isinstance(cause, BadRequestError)
                    and cause.error == "resource_already_exists_exception"):
                raise
        self._indices.add(index)

    def write(self, events: Sequence[AuditEvent], *, refresh: bool = False) -> WriteResult:
        """Bulk-``create`` the events with their id as ``_id``.

        A 409 (document exists) counts as ``existing``; raises EsUnavailable when any item
        may succeed on a retry (429, 5xx, transport) and EsRejected when a document is
        refused for good (e.g. a mapping conflict).
        """
        if not events:
            return WriteResult(0, 0)
        operations: list[dict[str, Any]] = []
        for event in events:
            index = index_for(self.prefix, event.ts)
            self._ensure_index(index)
            operations.append({"create": {"_index": index, "_id": event.id}})
            operations.append(to_es_document(event))
        resp = call_es("bulk indexing", self.client.bulk, operations=operations,
                     refresh=refresh or None)
        created = existing = 0
        retry: list[str] = []
        for item, event in zip(resp["items"], events, strict=True):
            result = item.get("create", {})
            status = int(result.get("status", 0))
            if 200 <= status < 300:
                created += 1
            elif status == 409:
                existing += 1
            elif status == 429 or status >= 500:
                retry.append(f"seq {event.seq}: {status}")
            else:
                raise EsRejected(f"Elasticsearch refused event seq {event.seq} ({status}): "
                                 f"{result.get('error')}")
        if retry:
            raise EsUnavailable(f"Elasticsearch could not index {len(retry)} events yet "
                                f"({', '.join(retry[:3])}); the batch will be retried")
        return WriteResult(created, existing)

    def count(self) -> int:
        resp = call_es("counting documents", self.client.count, index=index_pattern(self.prefix),
                     ignore_unavailable=True, allow_no_indices=True)
        return int(resp["count"])

    def refresh(self) -> None:
        call_es("refreshing", self.client.indices.refresh, index=index_pattern(self.prefix),
              ignore_unavailable=True, allow_no_indices=True)


__all__ = [
    "CUSTOM_NAMESPACES",
    "DEFAULT_PREFIX",
    "ECS_VERSION",
    "MAPPINGS",
    "ClusterInfo",
    "EsError",
    "EsIncompatible",
    "EsRejected",
    "EsSink",
    "EsUnavailable",
    "WriteResult",
    "call_es",
    "check_cluster",
    "client_major",
    "client_version",
    "ecs_categorization",
    "ilm_available",
    "index_for",
    "index_pattern",
    "index_template",
    "make_client",
    "month_end_ms",
    "to_es_document",
    "translate",
    "ts_us",
]
