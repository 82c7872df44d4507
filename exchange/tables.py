"""SQLAlchemy Core tables of the exchange (created by migration 0006_exchange; the
columns and table marked *seams* are added to older databases by 0007_exchange_seams)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

METADATA = MetaData()

datasets = Table(
    "exchange_datasets",
    METADATA,
    Column("name", String(200), primary_key=True),
    Column("owner_org", String(200), nullable=False),
    Column("owner_id", String(200), nullable=False),
    Column("grade", String(40), nullable=False),
    Column("columns", JSON, nullable=False),  # [{name, type, grade}]
    Column("key_columns", JSON, nullable=False),
    Column("group_columns", JSON, nullable=False),
    Column("bounds", JSON, nullable=False),  # {col: [lo, hi]}
    Column("computations", JSON, nullable=False),
    Column("rows", Integer, nullable=False),
    # most rows one subject (key value) may contribute to an aggregate; the DP unit is the
    # subject, so sensitivities scale with it and extra rows are dropped
    Column("max_contributions", Integer, nullable=False, default=1),
    Column("truncate_contributions", Boolean, nullable=False, default=False),
    Column("digest", String(64), nullable=False),  # sha256 of the plaintext Parquet
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("blob", String(300), nullable=False),  # file name under the data dir
    Column("created_at", DateTime(timezone=True), nullable=False),
    # seams: the budget family (datasets of the same people share one ε budget), the
    # provider's declared grade, and bottom-k sketches of keyed hashes of subject columns
    Column("family", String(200), nullable=True),
    Column("declared_grade", String(40), nullable=True),
    Column("subject_sketch", JSON, nullable=True),
)

jobs = Table(
    "exchange_jobs",
    METADATA,
    Column("id", String(40), primary_key=True),
    Column("kind", String(20), nullable=False),  # aggregate | psi | extract
    Column("dataset", String(200), nullable=False, index=True),
    Column("owner_org", String(200), nullable=False, index=True),
    Column("consumer_id", String(200), nullable=False, index=True),
    Column("consumer_org", String(200), nullable=False),
    Column("status", String(30), nullable=False),
    Column("query", JSON, nullable=False),
    Column("purpose", String(200), nullable=True),
    Column("decision", JSON, nullable=False),
    Column("result", JSON, nullable=True),
    Column("receipt", JSON, nullable=True),
    Column("reason", Text, nullable=True),
    Column("decided_by", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # seams: what was asked (digest and size of the stored request) and until when an
    # approval may be used
    Column("request_digest", String(64), nullable=True),
    Column("request_size", Integer, nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
)

# seams: the exact request body of a job that waits for approval (a PSI job's blinded
# set); on approval this is what runs
job_requests = Table(
    "exchange_job_requests",
    METADATA,
    Column("job_id", String(40), primary_key=True),
    Column("body", LargeBinary, nullable=False),
)

budgets = Table(
    "exchange_budgets",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(200), nullable=False),
    Column("dataset", String(200), nullable=False),
    Column("epsilon_spent", Float, nullable=False, default=0.0),
    Column("delta_spent", Float, nullable=False, default=0.0),
    UniqueConstraint("consumer", "dataset", name="uq_exchange_budget"),
)

ledger = Table(
    "exchange_budget_ledger",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(200), nullable=False, index=True),
    Column("dataset", String(200), nullable=False),
    Column("job_id", String(40), nullable=False),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

consent = Table(
    "exchange_consent",
    METADATA,
    Column("dataset", String(200), primary_key=True),
    Column("subject_hash", String(64), primary_key=True),
    Column("purpose", String(200), primary_key=True),
    Column("state", String(20), nullable=False),  # granted | withdrawn
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
