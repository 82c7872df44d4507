"""Character-window context enhancement for Chinese text.

Presidio's ``LemmaContextAwareEnhancer`` compares context words with spaCy lemmas;
with a blank Chinese pipeline there are no lemmas, so it never fires.  This enhancer
looks at the raw characters instead: a recognizer's context word found within
``before`` characters ahead of a finding (or ``after`` characters behind it) raises
its score by ``boost`` (at least to ``floor``).  Words that announce an order or
serial number (订单号, 编号, 流水号) lower the score of numeric findings that have no
positive context — 1228项 and 20210315001 are not personal data.
"""

from __future__ import annotations

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts

from desensitize.recognizers._tables import NEGATIVE_CONTEXT

_NUMERIC = frozenset({"CN_BANK_CARD", "PHONE_NUMBER", "CN_PASSPORT", "CN_LICENSE_PLATE",
                      "CN_USCC", "CN_RESIDENT_ID", "IP_ADDRESS"})
_ENHANCED = "is_score_enhanced_by_context"


class WindowContextEnhancer(ContextAwareEnhancer):
    """Raise (or lower) scores by words in a character window around each finding."""

    def __init__(
        self, *, boost: float = 0.35, floor: float = 0.4, before: int = 14, after: int = 4,
    ) -> None:
        super().__init__(
            context_similarity_factor=boost, min_score_with_context_similarity=floor,
            context_prefix_count=before, context_suffix_count=after,
        )

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        by_id = {r.id: r for r in recognizers}
        extra = [w for w in (context or []) if w]
        for result in raw_results:
            meta = result.recognition_metadata or {}
            if meta.get(_ENHANCED):
                continue
            rec = by_id.get(meta.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY, ""))
            words = list(rec.context if rec is not None and rec.context else []) + extra
            window = text[max(0, result.start - self.context_prefix_count):result.start]
            trailing = text[result.end:result.end + self.context_suffix_count]
            positive = any(w in window or trailing.startswith(w) for w in words)
            if positive:
                result.score = min(
                    self.MAX_SCORE,
                    max(result.score + self.context_similarity_factor,
                        self.min_score_with_context_similarity),
                )
                meta[_ENHANCED] = True
            elif result.entity_type in _NUMERIC and any(w in window for w in NEGATIVE_CONTEXT):
                result.score = result.score * (0.5 if result.score >= 1.0 else 0.3)
            result.recognition_metadata = meta
        return raw_results
