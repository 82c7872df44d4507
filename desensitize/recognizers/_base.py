"""Base class of our pattern recognizers: Presidio's ``PatternRecognizer`` with the
Chinese defaults (language ``zh``, case-sensitive, context words from the data table)
and a plain ``is_valid`` function that the table scanner reuses on Arrow candidates.

``validate_result`` follows Presidio's convention: ``True`` lifts the score to 1.0
(reserved for checksummed identifiers), ``None`` keeps the pattern score, ``False``
drops the match.
"""

from __future__ import annotations

from typing import ClassVar

import regex
from presidio_analyzer import Pattern, PatternRecognizer

from desensitize.recognizers._tables import context_words

BOUND_L = r"(?<![0-9A-Za-z])"
BOUND_R = r"(?![0-9A-Za-z])"


class ChinesePatternRecognizer(PatternRecognizer):
    """A pattern recognizer whose subclasses declare ENTITY, PATTERNS and ``is_valid``.

    Class attributes:
        ENTITY: the entity name (fixed list, see ``desensitize.findings.ENTITIES``).
        PATTERNS: ``(name, regex, score)`` triples in Python ``regex`` syntax.
        COLUMN_PATTERN: RE2 pattern (pyarrow compute) a whole cell must match to be a
            candidate in the table scanner.
        CHECKSUM: whether a passing ``is_valid`` is proof enough (score 1.0).
    """

    ENTITY: ClassVar[str] = ""
    PATTERNS: ClassVar[tuple[tuple[str, str, float], ...]] = ()
    COLUMN_PATTERN: ClassVar[str] = ""
    CHECKSUM: ClassVar[bool] = False
    FLAGS: ClassVar[int] = regex.DOTALL | regex.MULTILINE

    def __init__(self) -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            name=type(self).__name__,
            supported_language="zh",
            patterns=[Pattern(name, rx, score) for name, rx, score in self.PATTERNS],
            context=context_words(self.ENTITY),
            global_regex_flags=self.FLAGS,
        )

    @staticmethod
    def normalize(value: str) -> str:
        """The canonical form ``is_valid`` checks (separators removed)."""
        return value.strip()

    @classmethod
    def is_valid(cls, value: str) -> bool:
        """Whether ``value`` (a whole candidate) passes this entity's validation."""
        raise NotImplementedError

    def validate_result(self, pattern_text: str) -> bool | None:
        if not self.is_valid(pattern_text):
            return False
        return True if self.CHECKSUM else None
