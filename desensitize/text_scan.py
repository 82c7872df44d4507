"""Free-text scanning with the recognizers of a Presidio ``AnalyzerEngine``.

``TextScanner.scan(text)`` returns our frozen :class:`Finding` s; ``scan_many`` is the
batch entry point; ``redact`` replaces every finding by ``<ENTITY>``.  The scanner builds
the engine (:func:`build_analyzer`, which ``AnalyzerEngine`` users get as is) and calls
its recognizers and context enhancer itself (:class:`DirectAnalyzer`: the same results
without the engine's per-call overhead), on the windows where each entity family can
occur (:mod:`desensitize.scan_plan`; addresses first, so the name model skips them).
The pattern recognizers (IDs, cards, phones, e-mail, IP ...) read the text with its
full-width forms folded to ASCII (:func:`desensitize.standards.fold_width`, one character
for one), so ``ｚｗ＠ｅｘａｍｐｌｅ．ｃｏｍ`` is found and its original characters are masked.  Long texts are
cut into chunks at sentence boundaries (with a small overlap when no boundary is
near) so the regex engines never see megabytes at once; findings are mapped back to
offsets in the original text.  Where two entities claim overlapping spans the higher
score wins, ties broken by validator strictness (``recognizers.PRIORITY``).

Raises:
    ScanInputError: the text is binary (NUL bytes or mostly control characters).
    ScanTooLarge: the text is longer than ``max_chars``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from desensitize.errors import ScanInputError, ScanTooLarge
from desensitize.findings import ENTITIES, Finding
from desensitize.spans import Taken
from desensitize.standards import fold_width

DEFAULT_THRESHOLDS: dict[str, float] = {"PERSON": 0.5}
_BOUNDARIES = "\n。！？；!?;"
# control characters other than tab, line feed, vertical tab, form feed, carriage return
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")


def build_analyzer(entities: Sequence[str] | None = None) -> object:
    """A Presidio ``AnalyzerEngine`` for ``zh`` with our registry, NLP engine and enhancer."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    from desensitize.context import WindowContextEnhancer
    from desensitize.nlp import ChineseNlpEngine
    from desensitize.recognizers import build_recognizers

    registry = RecognizerRegistry(supported_languages=["zh"])
    for rec in build_recognizers():
        if entities is None or rec.supported_entities[0] in entities:  # type: ignore[attr-defined]
            registry.add_recognizer(rec)  # type: ignore[arg-type]
    return AnalyzerEngine(
        registry=registry, nlp_engine=ChineseNlpEngine(), supported_languages=["zh"],
        context_aware_enhancer=WindowContextEnhancer(),
    )


class DirectAnalyzer:
    """The steps of ``AnalyzerEngine.analyze`` that matter to our recognizers, run on the
    engine's own registry, NLP engine and context enhancer without its per-call overhead
    (recognizer lookup, artifacts, duplicate removal, decision-process bookkeeping).

    ``analyze(text, entities)`` returns the results ``engine.analyze(text, language="zh",
    entities=entities)`` returns, apart from contained duplicates of one entity (which
    :func:`resolve` drops anyway): each recognizer of the entities, the recognizers' own
    context step, the engine's context enhancer, then each recognizer's score threshold.
    Users of ``AnalyzerEngine`` keep the engine itself (:func:`build_analyzer`)."""

    def __init__(self, engine: object) -> None:
        from presidio_analyzer import EntityRecognizer

        self._engine = engine
        # a recognizer without a context step of its own keeps its results as they are
        self._plain_context = EntityRecognizer.enhance_using_context
        self._artifacts = engine.nlp_engine.process_text("", "zh")  # type: ignore[attr-defined]
        self._by_entities: dict[tuple[str, ...], list[object]] = {}

    def _recognizers(self, entities: tuple[str, ...]) -> list[object]:
        recs = self._by_entities.get(entities)
        if recs is None:
            recs = self._engine.registry.get_recognizers(  # type: ignore[attr-defined]
                language="zh", entities=list(entities), all_fields=False)
            self._by_entities[entities] = recs
        return recs

    def analyze(self, text: str, entities: tuple[str, ...]) -> list[object]:
        from presidio_analyzer import RecognizerResult

        engine = self._engine
        artifacts = self._artifacts
        recognizers = self._recognizers(entities)
        wanted = list(entities)
        key = RecognizerResult.RECOGNIZER_IDENTIFIER_KEY
        found: list[list[object]] = []
        for rec in recognizers:
            results = rec.analyze(text=text, entities=wanted, nlp_artifacts=artifacts)  # type: ignore[attr-defined]
            for r in results or ():
                if not r.recognition_metadata:
                    r.recognition_metadata = {}
                r.recognition_metadata.setdefault(key, rec.id)  # type: ignore[attr-defined]
            found.append(list(results or ()))
        enhanced: list[object] = []
        for k, rec in enumerate(recognizers):
            if not found[k]:
                continue
            if getattr(type(rec), "enhance_using_context", None) is self._plain_context:
                enhanced.extend(found[k])  # Presidio's own step returns the results as they are
                continue
            others = [r for j, rs in enumerate(found) if j != k for r in rs]
            enhanced.extend(rec.enhance_using_context(  # type: ignore[attr-defined]
                text=text, raw_recognizer_results=found[k], other_raw_recognizer_results=others,
                nlp_artifacts=artifacts, context=None))
        if not enhanced:
            return []
        enhanced = engine.context_aware_enhancer.enhance_using_context(  # type: ignore[attr-defined]
            text=text, raw_results=enhanced, nlp_artifacts=artifacts, recognizers=recognizers,
            context=None)
        default = engine.default_score_threshold  # type: ignore[attr-defined]
        limits = {rec.id: rec.score_thresholds for rec in recognizers}  # type: ignore[attr-defined]
        out = []
        for r in enhanced:
            own = limits.get(r.recognition_metadata.get(key), {})  # type: ignore[attr-defined]
            limit = own.get(r.entity_type, own.get("default", default))  # type: ignore[attr-defined]
            if r.score > 0 and r.score >= limit:  # type: ignore[attr-defined]
                out.append(r)
        return out


def check_text(text: str, *, max_chars: int) -> None:
    """Refuse binary data and over-long texts (see module docstring)."""
    if len(text) > max_chars:
        raise ScanTooLarge(
            f"text of {len(text)} characters is longer than the limit of {max_chars}",
            size=len(text), limit=max_chars,
        )
    if "\x00" in text:
        raise ScanInputError("input looks binary (it contains NUL bytes); give a text file")
    sample = text[:4096]
    if sample:
        control = len(_CONTROL.findall(sample))
        if control / len(sample) > 0.1:
            raise ScanInputError("input looks binary (too many control characters)")


def chunks(text: str, size: int, overlap: int) -> Iterator[tuple[int, str]]:
    """``(offset, piece)`` pieces of at most ``size`` characters covering ``text``."""
    start = 0
    n = len(text)
    while start < n:
        end = min(n, start + size)
        if end < n:
            cut = max(text.rfind(b, start + size // 2, end) for b in _BOUNDARIES)
            if cut > start:
                yield start, text[start:cut + 1]
                start = cut + 1
                continue
            yield start, text[start:end]
            start = end - overlap
            continue
        yield start, text[start:end]
        break


_JOIN = "。"
# (chunk offset, entities, joined windows, window starts, results when analysed already)
_Job = tuple[int, tuple[str, ...], str, list[tuple[int, int, int]], list[Any] | None]


def _join(piece: str, windows: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int, int]]]:
    """The windows of ``piece`` joined by full stops, and ``(joined_start, piece_start,
    length)`` of each window."""
    parts: list[str] = []
    starts: list[tuple[int, int, int]] = []
    pos = 1
    for s, e in windows:
        parts.append(piece[s:e])
        starts.append((pos, s, e - s))
        pos += e - s + 1
    # a full stop before each window: the cut is a clause end for the name model, and a
    # window that starts mid-clause is not taken for a line of its own (a list of names)
    return _JOIN + _JOIN.join(parts), starts


def resolve(findings: Iterable[Finding]) -> list[Finding]:
    """Non-overlapping findings: higher score first, then entity priority, then longer.

    The choice is greedy over all findings in that order; a finding overlapping no other
    is chosen whatever the order, and the choice within a group of findings overlapping
    each other (in start order, a run of spans each starting before the furthest end so
    far) depends on that group alone, so each group is resolved apart and most findings,
    alone, skip the sorting.  Findings on one span (empty ones overlap nothing) come out
    best first, and findings that tie keep their order within the set, as in the greedy
    pass over all."""
    from desensitize.recognizers import PRIORITY

    rank = {e: i for i, e in enumerate(PRIORITY)}
    ordered = sorted(set(findings), key=lambda f: (f.start, f.end, -f.score, rank.get(f.entity, 99)))
    chosen: list[Finding] = []
    i, n = 0, len(ordered)
    while i < n:
        j, reach = i + 1, ordered[i].end
        while j < n and ordered[j].start < reach:
            reach = max(reach, ordered[j].end)
            j += 1
        chosen.extend(ordered[i:j] if j == i + 1 else _greedy(ordered[i:j], rank))
        i = j
    return chosen


def _greedy(findings: Iterable[Finding], rank: dict[str, int]) -> list[Finding]:
    chosen: list[Finding] = []
    taken = Taken()
    for f in sorted(findings, key=lambda f: (-f.score, rank.get(f.entity, 99), -(f.end - f.start), f.start)):
        if taken.free(f.start, f.end):
            chosen.append(f)
            taken.add(f.start, f.end)
    return sorted(chosen, key=lambda f: (f.start, f.end))


@dataclass
class TextScanner:
    """Scan free text for the fixed entity list (see module docstring)."""

    entities: tuple[str, ...] = ENTITIES
    threshold: float = 0.4
    chunk_size: int = 20_000
    overlap: int = 80
    max_chars: int = 5_000_000
    batch_size: int = 256

    def __post_init__(self) -> None:
        unknown = set(self.entities) - set(ENTITIES)
        if unknown:
            raise ScanInputError(f"unknown entities: {', '.join(sorted(unknown))} "
                                 f"(known: {' '.join(ENTITIES)})")
        self._engine: object | None = None
        self._direct: DirectAnalyzer | None = None

    @property
    def engine(self) -> object:
        if self._engine is None:
            self._engine = build_analyzer(self.entities)
        return self._engine

    @property
    def direct(self) -> DirectAnalyzer:
        """The engine's recognizers called directly (see :class:`DirectAnalyzer`)."""
        if self._direct is None:
            self._direct = DirectAnalyzer(self.engine)
        return self._direct

    def _threshold(self, entity: str) -> float:
        return max(self.threshold, DEFAULT_THRESHOLDS.get(entity, 0.0))

    def scan(self, text: str, *, with_text: bool = False) -> list[Finding]:
        """Findings in ``text`` (offsets into ``text``), non-overlapping, sorted.

        Cheap candidate finding first (:func:`desensitize.scan_plan.plan`): each entity
        family is analysed only on the windows of the text where it can occur, joined by
        full stops, so the name model sees only where a name can be; the name model tags
        the candidate clauses of all chunks of a long text in one batch."""
        return next(self._scan_batch([text], with_text)) if text else []

    def _jobs(self, text: str) -> list[_Job]:
        """What to analyse in ``text``: per chunk and entity family, the joined windows.

        LOCATION is analysed here, first: a surname character inside an address found
        (解放路, 章丘区) is no place for the name model to look."""
        from desensitize.scan_plan import plan

        check_text(text, max_chars=self.max_chars)
        jobs: list[_Job] = []
        for offset, piece in chunks(text, self.chunk_size, self.overlap):
            if not piece.strip():
                continue
            taken: list[tuple[int, int]] = []
            # the pattern recognizers read full-width forms folded to ASCII (same length:
            # offsets stay those of ``piece``); names and addresses read the piece itself
            folded = fold_width(piece)
            todo = plan(piece, [e for e in self.entities if e != "PERSON"])
            for entities, windows in todo:
                joined, starts = _join(piece if entities == ("LOCATION",) else folded, windows)
                if not joined.strip():
                    continue
                done = None
                if entities == ("LOCATION",) and "PERSON" in self.entities:
                    done = self.direct.analyze(joined, entities)
                    taken = sorted(span for _, span, _ in self._placed(done, starts))
                jobs.append((offset, entities, joined, starts, done))
            if "PERSON" in self.entities:
                for entities, windows in plan(piece, ("PERSON",), taken):
                    joined, starts = _join(piece, windows)
                    if joined.strip():
                        jobs.insert(0, (offset, entities, joined, starts, None))
        return jobs

    def _placed(self, results: list[Any], starts: list[tuple[int, int, int]]
                ) -> Iterator[tuple[Any, tuple[int, int], float]]:
        """``(result, (start, end) in the piece, score)`` of the results above threshold
        that lie inside one window of the joined text."""
        import bisect

        keys = [j for j, _, _ in starts]
        limits: dict[str, float] = {}
        for r in results:
            limit = limits.get(r.entity_type)
            if limit is None:
                limit = limits[r.entity_type] = self._threshold(r.entity_type)
            if r.score < limit:
                continue
            i = bisect.bisect_right(keys, r.start) - 1  # the window holding the start
            if i < 0:
                continue
            j, p, n = starts[i]
            if not j <= r.end - 1 < j + n or r.start >= j + n:
                continue  # outside the windows, or across two: an artefact of the join
            s = p + (r.start - j)
            yield r, (s, s + (r.end - r.start)), float(r.score)

    def _run(self, text: str, jobs: list[_Job], with_text: bool) -> list[Finding]:
        found: list[Finding] = []
        for offset, entities, joined, starts, done in jobs:
            results = done if done is not None else self.direct.analyze(joined, entities)
            for r, (s, e), score in self._placed(results, starts):
                s, e = offset + s, offset + e
                found.append(Finding(r.entity_type, s, e, score, text[s:e] if with_text else None))
        return resolve(found)

    def scan_many(self, texts: Iterable[str], *, with_text: bool = False) -> Iterator[list[Finding]]:
        """Batch entry point: the findings of each text, in order (the same as ``scan``:
        the name model tags each clause unpadded, whatever shares its batch).

        Texts are taken ``batch_size`` at a time: the name model tags the candidate
        clauses of the whole batch in one call, which is what makes many short records
        (hotline tickets, form fields) fast; the rest runs per text as in ``scan``."""
        batch: list[str] = []
        for text in texts:
            batch.append(text)
            if len(batch) >= self.batch_size:
                yield from self._scan_batch(batch, with_text)
                batch = []
        if batch:
            yield from self._scan_batch(batch, with_text)

    def _scan_batch(self, texts: list[str], with_text: bool) -> Iterator[list[Finding]]:
        jobs = [self._jobs(t) if t else [] for t in texts]  # refuses bad input before any result
        if not any(jobs):
            # no window anywhere: nothing to analyse, and no engine or model is loaded
            yield from ([] for _ in texts)
            return
        from desensitize.name_model import tagger
        from desensitize.recognizers.person import clauses_ahead

        joined = [j for js in jobs for _, ents, j, _, _ in js if "PERSON" in ents]
        # the model is loaded only when a clause needs it (a scan without PERSON never)
        with clauses_ahead(joined) as clauses, (tagger().batch(clauses) if clauses else nullcontext()):
            out = [self._run(text, js, with_text) if js else [] for text, js in zip(texts, jobs, strict=True)]
        yield from out

    def redact(self, text: str) -> str:
        """``text`` with each finding replaced by ``<ENTITY>``."""
        out: list[str] = []
        pos = 0
        for f in self.scan(text):
            out.append(text[pos:f.start])
            out.append(f"<{f.entity}>")
            pos = f.end
        out.append(text[pos:])
        return "".join(out)
