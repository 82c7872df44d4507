"""Base class of our pattern recognizers: Presidio's ``PatternRecognizer`` with the
Chinese defaults (language ``zh``, case-sensitive, context words from the data table)
and a plain ``is_valid`` function that the table scanner reuses on Arrow candidates.

``validate_result`` follows Presidio's convention: ``True`` lifts the score to 1.0
(reserved for checksummed identifiers), ``None`` keeps the pattern score, ``False``
drops the match.  ``veto`` runs after the patterns and may drop results that the text
around them contradicts (an ID-shaped number after 身份证号 is no bank card).

Identifiers are written with full-width digits (``３７０１``) and separators
(``370104-19460313-0991``): the character classes below accept both, and validators
check :func:`desensitize.standards.compact` forms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import regex
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult

from desensitize.recognizers._tables import context_words
from desensitize.standards import SEPARATORS, compact, id_shaped

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts

_ALNUM = "0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
BOUND_L = rf"(?<![{_ALNUM}])"
BOUND_R = rf"(?![{_ALNUM}])"
D = "[0-9\uff10-\uff19]"
"""One digit, ASCII or full-width."""
SEP = "[" + SEPARATORS + "]"
"""One separator written inside an identifier (:data:`~desensitize.standards.SEPARATORS`):
dash, space, invisible character, dot, slash."""
SEP_RE2 = SEP
"""The same class for RE2 (pyarrow compute)."""
ID_CUE_BEFORE = 20
ID_CUE_AFTER = 4


def id_cue_near(text: str, start: int, end: int) -> bool:
    """Whether a resident-ID context word stands just before (or right after) a span."""
    window = text[max(0, start - ID_CUE_BEFORE):start]
    trailing = text[end:end + ID_CUE_AFTER]
    return any(w in window or trailing.startswith(w) for w in context_words("CN_RESIDENT_ID"))


class ChineseEntityRecognizer(EntityRecognizer):
    """A recognizer of one ENTITY with its own ``analyze`` (not patterns): language ``zh``,
    context words from the data table, results named after the recognizer."""

    ENTITY: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__(
            supported_entities=[self.ENTITY], name=type(self).__name__, supported_language="zh",
            context=context_words(self.ENTITY),
        )

    def _found(self, start: int, end: int, score: float, **metadata: object) -> RecognizerResult:
        """One result of this recognizer (``metadata`` adds to its name and id)."""
        return RecognizerResult(
            entity_type=self.ENTITY, start=start, end=end, score=score,
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: type(self).__name__,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                **metadata,
            },
        )


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
        """The canonical form ``is_valid`` checks (full-width folded, separators removed)."""
        return compact(value)

    @classmethod
    def is_valid(cls, value: str) -> bool:
        """Whether ``value`` (a whole candidate) passes this entity's validation."""
        raise NotImplementedError

    def validate_result(self, pattern_text: str) -> bool | None:
        if not self.is_valid(pattern_text):
            return False
        return True if self.CHECKSUM else None

    def veto(self, text: str, result: RecognizerResult) -> bool:
        """Whether the text around ``result`` rules it out (default: never)."""
        return False

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        if not self._may_match(text, regex_flags):
            return []  # no pattern matches anywhere: skip the per-pattern bookkeeping
        results = super().analyze(text, entities, nlp_artifacts, regex_flags)
        return [r for r in results if not self.veto(text, r)]

    def _may_match(self, text: str, regex_flags: int | None) -> bool:
        """Whether any pattern matches somewhere in ``text`` (the same patterns and flags
        the analysis uses; a text most recognizers have nothing to say about is common)."""
        flags = regex_flags or self.global_regex_flags
        patterns: list[Pattern] = vars(self)["patterns"]  # set by PatternRecognizer.__init__
        key = (tuple(p.regex for p in patterns), flags)
        probes = getattr(self, "_probes", None)
        if probes is None or probes[0] != key:
            probes = self._probes = (key, [regex.compile(rx, flags=flags) for rx in key[0]])
        return any(rx.search(text) is not None for rx in probes[1])


class NotAnIdRecognizer(ChinesePatternRecognizer):
    """A recognizer of an entity that an ID-shaped number after an ID cue is not: a number
    that fails the resident-ID check there is a mistyped ID, not a card or a credit code."""

    def veto(self, text: str, result: RecognizerResult) -> bool:
        return id_shaped(text[result.start:result.end]) and id_cue_near(text, result.start, result.end)
