"""The guard's per-word report: what each wrong word was, what was done to it, what it reads now."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..text.fidelity import CHANGED, INVENTED, KEPT, MISSING
from ..types import Box

#: what the guard did to a word
LEFT, RESAMPLED, COMPOSITED, UNPLACED = "left", "resampled", "composited", "no place"
#: an invented word that mode `guidance words` leaves as the upscaler drew it
AS_DRAWN = "left as drawn"
#: words left as drawn that the report names (the rest are counted)
AS_DRAWN_LISTED = 12


@dataclass
class WordRepair:
    """One guidance word (or one invented word) and the guard's treatment of it.

    `status` is the fidelity outcome before the guard, `final_status` after it; `action` is
    `left` (was right, untouched), `resampled` (fixed by re-sampling), `composited` (the
    fallback's pixels pasted; also set when the paste did not fix it), `no place` (a typed word
    with no position: nothing to repair) or `left as drawn` (an invented word, mode `guidance words`).
    """

    expected: str | None
    found: str | None
    status: str
    box: Box | None
    guidance_index: int | None = None
    action: str = LEFT
    rounds: int = 0
    final: str | None = None
    final_status: str | None = None
    repair: str | None = None
    #: read right, but drawn with other letters than the reference's (`faithful.misshapen`)
    misshapen: bool = False
    #: an invented word inside this guidance word's box: a piece of it, repaired with it
    piece_of: str | None = None

    @property
    def needs_repair(self) -> bool:
        return (self.status != KEPT and self.piece_of is None) or self.misshapen

    def to_dict(self) -> dict[str, Any]:
        return {"expected": self.expected, "found": self.found, "status": self.status, "action": self.action,
                "rounds": self.rounds, "repair": self.repair, "final": self.final, "final_status": self.final_status,
                "misshapen": self.misshapen, "piece_of": self.piece_of,
                "box": None if self.box is None else [round(v, 6) for v in self.box]}


@dataclass
class GuardReport:
    """The guard's account of one image."""

    words: list[WordRepair] = field(default_factory=list)
    f1_before: float = 1.0
    f1_after: float = 1.0
    rounds_run: int = 0
    ocr_passes: int = 0
    changed_pixels: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"f1_before": round(self.f1_before, 4), "f1_after": round(self.f1_after, 4),
                "rounds_run": self.rounds_run, "ocr_passes": self.ocr_passes, "changed_pixels": self.changed_pixels,
                "notes": list(self.notes), "words": [w.to_dict() for w in self.words]}


def _treatment(word: WordRepair) -> str:
    if word.action == COMPOSITED and word.repair:
        return f"{word.action} ({word.repair})"
    if word.action == LEFT and word.needs_repair and word.box is not None:
        return "left (no repair read right)"
    return word.action


def _describe(word: WordRepair) -> str:
    if word.status == KEPT and word.misshapen:
        return f'"{word.expected}": read right, letters misshapen -> {_treatment(word)}'
    if word.status == KEPT:
        return f'"{word.expected}": kept' + ("" if word.action == LEFT else f" -> {_treatment(word)}")
    if word.piece_of is not None:
        now = "gone" if word.final_status is None else f'still reads "{word.final}"'
        return f'"{word.found}": read inside "{word.piece_of}" (a piece of it, repaired only with it), {now}'
    before = {CHANGED: f'"{word.expected}": read "{word.found}"', MISSING: f'"{word.expected}": missing',
              INVENTED: f'"{word.found}": invented'}[word.status]
    if word.status == INVENTED:
        now = "gone" if word.final_status is None else f'still reads "{word.final}"'
    elif word.final_status == KEPT:
        now = "now right"
    else:
        now = f'now "{word.final}"' if word.final else f"still {word.final_status or word.status}"
    rounds = f" after {word.rounds} round(s)" if word.rounds else ""
    return f"{before} -> {_treatment(word)}{rounds}, {now}"


def format_guard_report(reports: Sequence[GuardReport]) -> str:
    """Readable lines: per image the F1 before and after, then every word that was repaired or checked."""
    lines = []
    for index, report in enumerate(reports, start=1):
        header = f"image {index} of {len(reports)}: " if len(reports) > 1 else ""
        as_drawn = [w for w in report.words if w.action == AS_DRAWN]
        touched = [w for w in report.words if (w.needs_repair or w.action != LEFT or w.piece_of is not None)
                   and w.action != AS_DRAWN]
        lines.append(f"{header}word F1 {report.f1_before:.3f} -> {report.f1_after:.3f}; {len(touched)} word(s) "
                     f"repaired or checked, {report.rounds_run} re-sample round(s), {report.ocr_passes} OCR pass(es), "
                     f"{report.changed_pixels} pixel(s) changed")
        lines.extend(f"  note: {note}" for note in report.notes)
        lines.extend(f"  {_describe(w)}" for w in touched)
        if as_drawn:
            named = ", ".join(f'"{w.found}"' for w in as_drawn[:AS_DRAWN_LISTED])
            more = ", ..." if len(as_drawn) > AS_DRAWN_LISTED else ""
            lines.append(f"  {len(as_drawn)} invented word(s) left as drawn (mode 'guidance words'): {named}{more}")
        kept = sum(1 for w in report.words if w not in touched and w not in as_drawn)
        if kept:
            lines.append(f"  {kept} word(s) already right, left untouched")
    return "\n".join(lines)
