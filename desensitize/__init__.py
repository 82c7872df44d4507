"""desensitize — find, classify and mask personal information in tables and text.

Scanning (recognizers built on Presidio, text and columnar scanners, the column
classifier) and masking (operators, profiles, table I/O).  A library: no web
framework, no service imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

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

# Names load on first use (PEP 562, through lazy_loader): importing one submodule of the
# package, or ``desensitize`` itself, does not pull in the heavy libraries of the others.
__getattr__, __dir__, _ = lazy_loader.attach(__name__, submod_attrs={  # submodule: its names
    "classify": ("ColumnReport", "DatasetReport", "grade_dataset"),
    "errors": ("DesensitizeError", "KeyMaterialError", "OperatorError", "PlanError", "ProfileError",
               "RecognizerDataError", "ScanInputError", "ScanTooLarge", "TableError",
               "TableTooLarge", "UnknownProfile"),
    "findings": ("ENTITIES", "Finding"),
    "table_scan": ("TableScanner", "scan_batches"),
    "text_scan": ("TextScanner",),
    "keys": ("Keyring", "load_keyring"),
    "masker": ("Masker", "MaskStats", "mask_table"),
    "operators": ("OPERATORS", "apply_operator", "invert_operator"),
    "pipeline": ("MaskResult", "columns_from_report", "run_mask", "span_finder_for"),
    "plan": ("ColumnInfo", "MaskPlan", "build_plan", "load_plan_file"),
    "profiles": ("Profile", "ProfileSet", "load_profiles"),
    "risk": ("KAnonymity", "KResult", "k_anonymity"),
    "tableio": ("open_table", "open_writer", "read_table"),
})

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
