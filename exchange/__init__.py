"""Privacy exchange: compute on providers' data without seeing or taking its rows.

Catalog (encrypted at rest), differentially private aggregates (OpenDP), ε/δ budgets,
ECDH-PSI (openmined-psi), masked + watermarked extracts, approval, signed receipts and a
consent registry. The service supplies policy, scanning, masking, marking and audit
through the Protocols in :mod:`exchange.ports`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

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

# Names load on first use (PEP 562, through lazy_loader): importing one submodule of the
# package, or ``exchange`` itself, does not pull in the heavy libraries of the others.
__getattr__, __dir__, _ = lazy_loader.attach(__name__, submod_attrs={  # submodule: its names
    "aggregate": ("AGGREGATES", "AggregateQuery", "AggregateResult", "run_aggregate", "validate"),
    "budget": ("BudgetState",),
    "catalog": ("COMPUTATIONS", "Catalog", "ColumnInfo", "Dataset"),
    "crypto": ("MasterKey",),
    "errors": ("BudgetExhausted", "DatasetExists", "DatasetNotFound", "ExchangeError",
               "IntegrityFailure", "InvalidDataset", "InvalidQuery", "JobNotFound", "JobStateError",
               "KeyFileError", "ReceiptInvalid", "Refused"),
    "extract": ("ExtractOutput",),
    "jobs": ("Job",),
    "limits": ("Defaults",),
    "ports": ("AuditSink", "Caller", "Clock", "Decider", "Grading", "Grant", "MaskedTable",
              "Masker", "Scanner", "Watermarker"),
    "psi": ("PsiAnswer", "PsiClient", "PsiOutcome"),
    "receipts": ("ReceiptSigner", "result_digest", "verify_receipt"),
    "service": ("Exchange",),
    "tables": ("METADATA",),
})

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
