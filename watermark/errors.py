"""Errors of the watermark package.

One tree; every class carries ``kind`` (see CONTRIBUTING.md), which the service maps to an
HTTP status and a CLI exit code::

    WatermarkError                 (invalid)
    ├── NoMarkableColumns          (invalid)   nothing in the table can carry a mark
    ├── TableTooSmall              (invalid)   too few rows to carry a detectable mark
    ├── NoCommonColumns            (invalid)   suspect shares no column with the issued copies
    ├── MissingKeyColumns          (invalid)   suspect lacks the columns the row key is built from
    ├── UnknownDataset             (not_found) no copy of that dataset was ever issued
    └── KeyMismatch                (integrity) the registry's copies were marked under another key
"""

from __future__ import annotations


class WatermarkError(Exception):
    """Base class of every error raised by :mod:`watermark`."""

    kind = "invalid"


class NoMarkableColumns(WatermarkError):
    """The table has no column that may carry a mark (all keys, IDs, dates, tiny numbers)."""

    kind = "invalid"

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns
        shown = ", ".join(columns) if columns else "(none)"
        super().__init__(
            f"no column can carry a watermark (columns: {shown}); a measure needs values "
            "large enough for a digit to move within the usability bound and spread evenly, "
            "a date column varied days, a category spellings it already writes two ways, a "
            "masked column mask characters; ask for canary rows, or name columns to override"
        )


class TableTooSmall(WatermarkError):
    """The table would carry fewer marks than a detection at the configured level needs."""

    kind = "invalid"

    def __init__(self, *, rows: int, expected_marks: float, needed_marks: int,
                 needed_rows: int) -> None:
        self.rows = rows
        self.expected_marks = expected_marks
        self.needed_marks = needed_marks
        self.needed_rows = needed_rows
        super().__init__(
            f"table too small to carry a watermark: {rows} rows would carry about "
            f"{expected_marks:.0f} marks, detection needs at least {needed_marks} "
            f"(about {needed_rows} rows, {max(needed_rows - rows, 0)} more); "
            "lower gamma or add canary rows"
        )


class NoCommonColumns(WatermarkError):
    """The suspect table has none of the columns marked in the issued copies."""

    kind = "invalid"

    def __init__(self, suspect: tuple[str, ...], marked: tuple[str, ...]) -> None:
        self.suspect = suspect
        self.marked = marked
        super().__init__(
            "the suspect table has none of the marked columns of the issued copies "
            f"(suspect: {', '.join(suspect) or '(none)'}; marked: {', '.join(marked)})"
        )


class MissingKeyColumns(WatermarkError):
    """The suspect table lacks every key column needed to locate the marks."""

    kind = "invalid"

    def __init__(self, missing: tuple[str, ...]) -> None:
        self.missing = missing
        super().__init__(
            "the suspect table lacks the row-key columns the marks are located by: "
            + ", ".join(missing)
        )


class UnknownDataset(WatermarkError):
    """No copy of the named dataset is registered."""

    kind = "not_found"

    def __init__(self, dataset: str, known: tuple[str, ...] = ()) -> None:
        self.dataset = dataset
        self.known = known
        hint = f" (known: {', '.join(known)})" if known else " (no copies registered yet)"
        super().__init__(f"no watermarked copy of dataset {dataset!r} was issued{hint}")


class KeyMismatch(WatermarkError):
    """The issued copies were marked under a different secret than the one given."""

    kind = "integrity"

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"watermark key mismatch: the issued copies were marked under key {expected}, "
            f"the configured key is {actual}; detection with the wrong key cannot work"
        )
