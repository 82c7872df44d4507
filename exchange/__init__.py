"""Privacy exchange: compute on providers' data without seeing or taking its rows.

Catalog (encrypted at rest), differentially private aggregates (OpenDP), ε/δ budgets,
ECDH-PSI (openmined-psi), masked + watermarked extracts, approval, signed receipts and a
consent registry. The service supplies policy, scanning, masking, marking and audit
through the Protocols in :mod:`exchange.ports`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exchange.aggregate import (
        AGGREGATES,
        AggregateQuery,
        AggregateResult,
        run_aggregate,
        validate,
    )
    from exchange.budget import BudgetState
    from exchange.catalog import COMPUTATIONS, Catalog, ColumnInfo, Dataset
    from exchange.crypto import MasterKey
    from exchange.errors import (
        BudgetExhausted,
        DatasetExists,
        DatasetNotFound,
        ExchangeError,
        IntegrityFailure,
        InvalidDataset,
        InvalidQuery,
        JobNotFound,
        JobStateError,
        KeyFileError,
        ReceiptInvalid,
        Refused,
    )
    from exchange.extract import ExtractOutput
    from exchange.jobs import Job
    from exchange.limits import Defaults
    from exchange.ports import (
        AuditSink,
        Caller,
        Clock,
        Decider,
        Grading,
        Grant,
        MaskedTable,
        Masker,
        Scanner,
        Watermarker,
    )
    from exchange.psi import PsiAnswer, PsiClient, PsiOutcome
    from exchange.receipts import ReceiptSigner, result_digest, verify_receipt
    from exchange.service import Exchange
    from exchange.tables import METADATA

# Names load on first use (PEP 562): importing one submodule of the package, or
# ``exchange`` itself, does not pull in the heavy libraries of the others.
_EXPORTS = {
    "AGGREGATES": "exchange.aggregate",
    "AggregateQuery": "exchange.aggregate",
    "AggregateResult": "exchange.aggregate",
    "run_aggregate": "exchange.aggregate",
    "validate": "exchange.aggregate",
    "BudgetState": "exchange.budget",
    "COMPUTATIONS": "exchange.catalog",
    "Catalog": "exchange.catalog",
    "ColumnInfo": "exchange.catalog",
    "Dataset": "exchange.catalog",
    "MasterKey": "exchange.crypto",
    "BudgetExhausted": "exchange.errors",
    "DatasetExists": "exchange.errors",
    "DatasetNotFound": "exchange.errors",
    "ExchangeError": "exchange.errors",
    "IntegrityFailure": "exchange.errors",
    "InvalidDataset": "exchange.errors",
    "InvalidQuery": "exchange.errors",
    "JobNotFound": "exchange.errors",
    "JobStateError": "exchange.errors",
    "KeyFileError": "exchange.errors",
    "ReceiptInvalid": "exchange.errors",
    "Refused": "exchange.errors",
    "ExtractOutput": "exchange.extract",
    "Job": "exchange.jobs",
    "Defaults": "exchange.limits",
    "AuditSink": "exchange.ports",
    "Caller": "exchange.ports",
    "Clock": "exchange.ports",
    "Decider": "exchange.ports",
    "Grading": "exchange.ports",
    "Grant": "exchange.ports",
    "MaskedTable": "exchange.ports",
    "Masker": "exchange.ports",
    "Scanner": "exchange.ports",
    "Watermarker": "exchange.ports",
    "PsiAnswer": "exchange.psi",
    "PsiClient": "exchange.psi",
    "PsiOutcome": "exchange.psi",
    "ReceiptSigner": "exchange.receipts",
    "result_digest": "exchange.receipts",
    "verify_receipt": "exchange.receipts",
    "Exchange": "exchange.service",
    "METADATA": "exchange.tables",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [  # noqa: RUF022 - plain sorted()
    "AGGREGATES",
    "AggregateQuery",
    "AggregateResult",
    "AuditSink",
    "BudgetExhausted",
    "BudgetState",
    "COMPUTATIONS",
    "Caller",
    "Catalog",
    "Clock",
    "ColumnInfo",
    "Dataset",
    "DatasetExists",
    "DatasetNotFound",
    "Decider",
    "Defaults",
    "Exchange",
    "ExchangeError",
    "ExtractOutput",
    "Grading",
    "Grant",
    "IntegrityFailure",
    "InvalidDataset",
    "InvalidQuery",
    "Job",
    "JobNotFound",
    "JobStateError",
    "KeyFileError",
    "METADATA",
    "MaskedTable",
    "Masker",
    "MasterKey",
    "PsiAnswer",
    "PsiClient",
    "PsiOutcome",
    "ReceiptInvalid",
    "ReceiptSigner",
    "Refused",
    "Scanner",
    "Watermarker",
    "result_digest",
    "run_aggregate",
    "validate",
    "verify_receipt",
]
