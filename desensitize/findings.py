"""Our own finding type: Presidio's result types stay inside the scanner."""

from __future__ import annotations

from dataclasses import dataclass

ENTITIES: tuple[str, ...] = (
    "PERSON",
    "LOCATION",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "IP_ADDRESS",
    "CN_RESIDENT_ID",
    "CN_BANK_CARD",
    "CN_USCC",
    "CN_LICENSE_PLATE",
    "CN_PASSPORT",
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal information found in a text.

    ``start``/``end`` are ``str`` offsets (code points) into the scanned text,
    ``end`` exclusive; ``score`` is in [0, 1]; ``text`` is the matched value when the
    caller asked for it (never stored in audit events).
    """

    entity: str
    start: int
    end: int
    score: float
    text: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "entity": self.entity, "start": self.start, "end": self.end,
            "score": round(self.score, 2),
        }
        if self.text is not None:
            out["text"] = self.text
        return out
