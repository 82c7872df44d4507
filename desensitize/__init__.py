"""desensitize — find, classify and mask personal information in tables and text.

Scanning (recognizers built on Presidio, text and columnar scanners, the column
classifier) and masking (operators, profiles, table I/O).  A library: no web
framework, no service imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desensitize.classify import ColumnReport, DatasetReport, grade_dataset
    from desensitize.errors import (
        DesensitizeError,
        KeyMaterialError,
        OperatorError,
        PlanError,
        ProfileError,
        RecognizerDataError,
        ScanInputError,
        ScanTooLarge,
        TableError,
        TableTooLarge,
        UnknownProfile,
    )
    from desensitize.findings import ENTITIES, Finding
    from desensitize.keys import Keyring, load_keyring
    from desensitize.masker import Masker, MaskStats, mask_table
    from desensitize.operators import OPERATORS, apply_operator, invert_operator
    from desensitize.pipeline import MaskResult, columns_from_report, run_mask, span_finder_for
    from desensitize.plan import ColumnInfo, MaskPlan, build_plan, load_plan_file
    from desensitize.profiles import Profile, ProfileSet, load_profiles
    from desensitize.risk import KAnonymity, KResult, k_anonymity
    from desensitize.table_scan import TableScanner, scan_batches
    from desensitize.tableio import open_table, open_writer, read_table
    from desensitize.text_scan import TextScanner

# Names load on first use (PEP 562): importing one submodule of the package, or
# ``desensitize`` itself, does not pull in the heavy libraries of the others.
_EXPORTS = {
    "ColumnReport": "desensitize.classify",
    "DatasetReport": "desensitize.classify",
    "grade_dataset": "desensitize.classify",
    "DesensitizeError": "desensitize.errors",
    "RecognizerDataError": "desensitize.errors",
    "ScanInputError": "desensitize.errors",
    "ScanTooLarge": "desensitize.errors",
    "ENTITIES": "desensitize.findings",
    "Finding": "desensitize.findings",
    "TableScanner": "desensitize.table_scan",
    "scan_batches": "desensitize.table_scan",
    "TextScanner": "desensitize.text_scan",
    "KeyMaterialError": "desensitize.errors",
    "OperatorError": "desensitize.errors",
    "PlanError": "desensitize.errors",
    "ProfileError": "desensitize.errors",
    "TableError": "desensitize.errors",
    "TableTooLarge": "desensitize.errors",
    "UnknownProfile": "desensitize.errors",
    "Keyring": "desensitize.keys",
    "load_keyring": "desensitize.keys",
    "Masker": "desensitize.masker",
    "MaskStats": "desensitize.masker",
    "mask_table": "desensitize.masker",
    "OPERATORS": "desensitize.operators",
    "apply_operator": "desensitize.operators",
    "invert_operator": "desensitize.operators",
    "MaskResult": "desensitize.pipeline",
    "columns_from_report": "desensitize.pipeline",
    "run_mask": "desensitize.pipeline",
    "span_finder_for": "desensitize.pipeline",
    "ColumnInfo": "desensitize.plan",
    "MaskPlan": "desensitize.plan",
    "build_plan": "desensitize.plan",
    "load_plan_file": "desensitize.plan",
    "Profile": "desensitize.profiles",
    "ProfileSet": "desensitize.profiles",
    "load_profiles": "desensitize.profiles",
    "KAnonymity": "desensitize.risk",
    "KResult": "desensitize.risk",
    "k_anonymity": "desensitize.risk",
    "open_table": "desensitize.tableio",
    "open_writer": "desensitize.tableio",
    "read_table": "desensitize.tableio",
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
    "ColumnInfo",
    "ColumnReport",
    "DatasetReport",
    "DesensitizeError",
    "ENTITIES",
    "Finding",
    "KAnonymity",
    "KResult",
    "KeyMaterialError",
    "Keyring",
    "MaskPlan",
    "MaskResult",
    "MaskStats",
    "Masker",
    "OPERATORS",
    "OperatorError",
    "PlanError",
    "Profile",
    "ProfileError",
    "ProfileSet",
    "RecognizerDataError",
    "ScanInputError",
    "ScanTooLarge",
    "TableError",
    "TableScanner",
    "TableTooLarge",
    "TextScanner",
    "UnknownProfile",
    "apply_operator",
    "build_plan",
    "columns_from_report",
    "grade_dataset",
    "invert_operator",
    "k_anonymity",
    "load_keyring",
    "load_plan_file",
    "load_profiles",
    "mask_table",
    "open_table",
    "open_writer",
    "read_table",
    "run_mask",
    "scan_batches",
    "span_finder_for",
]
