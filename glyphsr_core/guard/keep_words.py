"""Keep Words: any upscaler's look, a faithful upscale's words.

Read the upscaler's output, pair its words with the guidance words (read from the faithful
reference, or typed) by place (`fidelity.compare_words`), and repair every word that was changed,
lost or invented, or that reads right but is drawn with other letters than the reference's
(`faithful.misshapen`) (`changed words`), or every word box (`all text`). With no guidance words,
every word the output reads is invented. An invented word mostly inside a guidance word's box is a
piece of that word (the OCR split it) and is repaired only with it. `guidance words` repairs as
`changed words` does but leaves invented words as the upscaler drew them (on a real photo the OCR
reads component print and textures as words):

1. optionally re-sample the words (a caller-supplied `Resampler`: ComfyUI sampling in the node,
   diffusers headless), up to `rounds` times while they are still wrong;
2. climb the repair ladder (`repairs.LADDER`: the upscaler's fine detail over the reference's
   letters, the sharpened reference, the reference, the reference with wider margins). Each rung
   is read back; a word keeps the first rung under which it reads right (and, in `changed words`,
   a rung made with the upscaler's pixels must draw the reference's letters), and a rung is kept
   only if the image's word F1 does not drop. A word a neighbour's repair broke climbs it too.

Only pixels under a written mask change (feathered over `dilation` pixels, so no seam at the box
edge); everything else stays bit-identical to the upscaler's output. The Text Guard of the
diffusion graphs is this function with the Text Restore result as reference.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..sampling.colorfix import match_reference
from ..errors import InvalidInputError
from ..text.fidelity import DEFAULT_MIN_OVERLAP, INVENTED, KEPT, FidelityResult, box_intersection, compare_words
from ..types import OcrResult
from .faithful import misshapen
from .core import (COLOR_METHODS, GuardResult, Reader, Resampler, blend_window, centre_inside, reading_of,
                   repairs_of, resample_round, resample_window)
from .masks import mask_crop, word_mask
from .repairs import LADDER, REFERENCE, Rung, repair_patch
from .report import AS_DRAWN, COMPOSITED, RESAMPLED, UNPLACED, GuardReport, WordRepair

CHANGED_WORDS, ALL_TEXT, GUIDANCE_WORDS = "changed words", "all text", "guidance words"
KEEP_MODES = (CHANGED_WORDS, ALL_TEXT, GUIDANCE_WORDS)
#: pixels of context around the masked boxes that the colour match and the repairs see
CONTEXT = 32
NO_WORDS_AT_ALL = "no guidance words and none read in the image: it passes through untouched"
NOTHING_GUIDED = "no guidance words: 'guidance words' has nothing to repair, the image passes through untouched"
NO_GUIDANCE_WORDS = "no guidance words: every word read in the image is invented and repaired"
#: an invented word with at least this share of its box inside a guidance word's box is a piece of it
PIECE_INSIDE = 0.5
#: a reference whose aspect ratio differs from the image's by more than this is not the same picture
MAX_ASPECT_MISMATCH = 0.02


def reference_note(image_size: tuple[int, int], reference_size: tuple[int, int]) -> str | None:
    """None when the reference is the image's size; a sentence when it is resized to it; an error
    when the two cannot be the same picture (aspect ratios differ)."""
    (height, width), (ref_h, ref_w) = image_size, reference_size
    if (height, width) == (ref_h, ref_w):
        return None
    sx, sy = width / ref_w, height / ref_h
    if abs(sx - sy) > MAX_ASPECT_MISMATCH * max(sx, sy):
        raise InvalidInputError(
            f"'reference' is {ref_w}x{ref_h} and 'image' is {width}x{height}: x{sx:.3g} across but x{sy:.3g} down, "
            "so they are not the same picture (connect the upscaler's input image or its faithful upscale)")
    whole = sx == sy and float(sx).is_integer()
    how = f"x{int(sx)}" if whole else f"x{sx:.3g} (not a whole multiple)"
    return f"reference {ref_w}x{ref_h} enlarged {how} to {width}x{height} with bicubic"


def _check_settings(image: torch.Tensor, reference: torch.Tensor, mode: str, rounds: int, color_method: str,
                    align: int) -> None:
    for name, tensor in (("image", image), ("reference", reference)):
        if tensor.ndim != 3 or tensor.shape[0] != 3:
            raise InvalidInputError(f"'{name}' must be a [3, H, W] tensor, got shape {tuple(tensor.shape)}")
    if mode not in KEEP_MODES:
        raise InvalidInputError(f"mode must be one of {KEEP_MODES}, got {mode!r}")
    if rounds < 0:
        raise InvalidInputError(f"rounds must be 0 or more, got {rounds}")
    if color_method not in COLOR_METHODS:
        raise InvalidInputError(f"color_method must be one of {COLOR_METHODS}, got {color_method!r}")
    if align < 1:
        raise InvalidInputError(f"align must be at least 1, got {align}")


class _Repair:
    """The state of one image's repair: the picture so far, its reading, the words still wrong."""

    def __init__(self, image: torch.Tensor, reference: torch.Tensor, guidance: OcrResult, reader: Reader,
                 min_overlap: float, on_step: Callable[[str], None], check_shapes: bool) -> None:
        self.image, self.reference, self.guidance = image, reference, guidance
        self.check_shapes = check_shapes
        self.reader, self.min_overlap, self.on_step = reader, min_overlap, on_step
        self.report = GuardReport()
        self.current, self.written = image, torch.zeros(image.shape[-2:])
        self.result = self.read(image, "read output")
        self.f1 = self.result.counts.f1
        self.pending: list[WordRepair] = []

    def read(self, picture: torch.Tensor, name: str) -> FidelityResult:
        found = self.reader(picture)
        self.report.ocr_passes += 1
        self.on_step(name)
        return compare_words(self.guidance, found, min_overlap=self.min_overlap)

    def fixed_by(self, reading: FidelityResult, words: Sequence[WordRepair], picture: torch.Tensor,
                 shapes: bool = True) -> list[WordRepair]:
        """The words that read right in `reading` (of `picture`) and, when shapes are checked (`changed
        words`, a repair made with the upscaler's pixels), are drawn with the reference's letters there."""
        shapes = shapes and self.check_shapes
        return [w for w in words if reading_of(w, reading)[0] == KEPT
                and not (shapes and w.expected is not None and misshapen(picture, self.reference, w.box))]

    def adopt(self, candidate: torch.Tensor, mask: torch.Tensor, reading: FidelityResult, action: str, repair: str,
              tried: Sequence[WordRepair], shapes: bool = True) -> None:
        self.current, self.result, self.f1 = candidate, reading, reading.counts.f1
        self.written = torch.maximum(self.written, mask)
        fixed = self.fixed_by(reading, tried, candidate, shapes)
        for word in tried:
            word.action, word.repair = action, repair
        self.pending = [w for w in self.pending if w not in fixed]

    def mask(self, words: Sequence[WordRepair], dilation: int, context: float = 0.0) -> torch.Tensor:
        height, width = self.image.shape[-2:]
        return word_mask([w.box for w in words], width, height, dilation, context)

    def patched(self, rung: Rung, mask: torch.Tensor, color_method: str) -> torch.Tensor:
        window = mask_crop(mask, CONTEXT)
        x0, y0, x1, y1 = window
        patch = repair_patch(rung.kind, self.image[:, y0:y1, x0:x1].float()[None],
                             self.reference[:, y0:y1, x0:x1].float()[None], mask[y0:y1, x0:x1], color_method)
        return blend_window(self.current, patch[0], mask, window)

    def try_rung(self, rung: Rung, dilation: int, color_method: str) -> None:
        """Apply a rung to every pending word, read it back, keep it for the words it fixes."""
        mask = self.mask(self.pending, dilation, rung.context)
        candidate = self.patched(rung, mask, color_method)
        reading = self.read(candidate, rung.name)
        shapes = rung.kind != REFERENCE  # the reference's own pixels are its letters (the colour match aside)
        fixed = self.fixed_by(reading, self.pending, candidate, shapes)
        if not fixed:
            return
        if len(fixed) < len(self.pending):  # keep the rung only where it helped; read that back
            mask = self.mask(fixed, dilation, rung.context)
            candidate = self.patched(rung, mask, color_method)
            reading = self.read(candidate, f"{rung.name} (the words it fixed)")
            fixed = self.fixed_by(reading, fixed, candidate, shapes)
        if fixed and reading.counts.f1 >= self.f1:
            self.adopt(candidate, mask, reading, COMPOSITED, rung.name, fixed, shapes)

    def climb(self, dilation: int, color_method: str) -> None:
        for rung in LADDER:
            if not self.pending:
                return
            self.try_rung(rung, dilation, color_method)

    def still_wrong(self, wanted: Callable[[WordRepair], bool]) -> list[WordRepair]:
        """Words the repair is for that do not read right in the latest reading."""
        return [w for w in self.report.words
                if wanted(w) and w.box is not None and reading_of(w, self.result)[0] != KEPT]

    def new_inventions(self) -> list[WordRepair]:
        """Invented words in the latest reading that were not there at first (a repair of one word can make
        the OCR read a fragment beside or inside it); each becomes a word to repair."""
        known = [w.box for w in self.report.words if w.status == INVENTED and w.box is not None]
        newcomers = [WordRepair(expected=None, found=o.found.text, status=INVENTED, box=o.found.box)
                     for o in self.result.outcomes
                     if o.status == INVENTED and o.found.box is not None
                     and not any(centre_inside(box, o.found.box) for box in known)]
        mark_pieces(newcomers, self.report.words)
        return newcomers

    def resample(self, resampler: Resampler, rounds: int, dilation: int, align: int) -> None:
        for index in range(rounds):
            if not self.pending:
                return
            mask = self.mask(self.pending, dilation)
            candidate = resample_window(self.current, mask, resampler, resample_round(index), align)
            self.report.rounds_run += 1
            for word in self.pending:
                word.rounds += 1
            reading = self.read(candidate, f"re-sample round {index + 1}")
            if reading.counts.f1 >= self.f1 and self.fixed_by(reading, self.pending, candidate):
                self.adopt(candidate, mask, reading, RESAMPLED, RESAMPLED, list(self.pending))

    def finish(self) -> GuardResult:
        for word in self.report.words:
            if word.box is not None or word.guidance_index is not None:
                word.final_status, word.final = reading_of(word, self.result)
                if word.status == INVENTED and word.final_status == KEPT:
                    word.final_status = None  # gone
        self.report.f1_after = self.f1
        self.report.changed_pixels = int((self.current != self.image).any(dim=0).sum())
        return GuardResult(image=self.current, mask=self.written, report=self.report)


def mark_pieces(words: Sequence[WordRepair], among: Sequence[WordRepair]) -> None:
    """An invented word that lies mostly inside a guidance word's box is a piece of that word (the
    OCR split a long label): it is repaired with the word, never on its own, so a label is not
    patched piece by piece into doubled strokes."""
    guided = [w for w in among if w.expected is not None and w.box is not None]
    for word in words:
        if word.status == INVENTED and word.box is not None:
            inside = PIECE_INSIDE * (word.box[2] - word.box[0]) * (word.box[3] - word.box[1])
            owner = next((g for g in guided if inside > 0 and box_intersection(word.box, g.box) >= inside), None)
            word.piece_of = owner and owner.expected


def leave_inventions_as_drawn(words: Sequence[WordRepair], mode: str) -> None:
    """`guidance words`: invented words (not pieces of a guidance word) stay as the upscaler drew them."""
    if mode == GUIDANCE_WORDS:
        for word in words:
            if word.expected is None and word.piece_of is None:
                word.action = AS_DRAWN


def keep_words(image: torch.Tensor, reference: torch.Tensor, guidance: OcrResult, *, reader: Reader,
               mode: str = CHANGED_WORDS, resampler: Resampler | None = None, rounds: int = 0, dilation: int = 8,
               min_overlap: float = DEFAULT_MIN_OVERLAP, color_method: str = "wavelet", align: int = 8,
               on_step: Callable[[str], None] | None = None) -> GuardResult:
    """Put the guidance words back into `image` [3, H, W] (0..1, the upscaler's output).

    `reference` [3, h, w] (a faithful upscale, or the LQ) is enlarged to the image with bicubic.
    `on_step(name)` is called after every OCR pass (progress, and the place to raise on Cancel).
    """
    _check_settings(image, reference, mode, rounds, color_method, align)
    note = reference_note(tuple(image.shape[-2:]), tuple(reference.shape[-2:]))
    reference = match_reference(reference.float()[None], image.float()[None])[0]
    state = _Repair(image, reference, guidance, reader, min_overlap, on_step or (lambda name: None),
                    check_shapes=mode != ALL_TEXT)
    state.report.notes = [note] if note else []
    if not any(region.text.strip() for region in guidance.regions):  # whatever the image reads is invented
        if not state.result.outcomes or mode == GUIDANCE_WORDS:
            state.report.notes.append(NOTHING_GUIDED if state.result.outcomes else NO_WORDS_AT_ALL)
            return GuardResult(image=image, mask=torch.zeros(image.shape[-2:]), report=state.report)
        state.report.notes.append(NO_GUIDANCE_WORDS)
    state.report.words = repairs_of(state.result)
    mark_pieces(state.report.words, state.report.words)
    leave_inventions_as_drawn(state.report.words, mode)
    if state.check_shapes:  # read right, but with the upscaler's letters rather than the reference's
        for word in state.report.words:
            word.misshapen = word.status == KEPT and misshapen(image, reference, word.box)
    state.report.f1_before = state.report.f1_after = state.f1
    for word in state.report.words:
        if word.box is None and (word.needs_repair or mode == ALL_TEXT):
            word.action = UNPLACED
    wanted = (lambda w: True) if mode == ALL_TEXT else (lambda w: w.needs_repair and w.action != AS_DRAWN)
    state.pending = [w for w in state.report.words if wanted(w) and w.box is not None]
    if resampler is not None:
        state.resample(resampler, rounds, dilation, align)
    state.climb(dilation, color_method)
    failed = list(state.pending)
    state.pending = state.still_wrong(lambda w: w.piece_of is None and w.action != AS_DRAWN)  # and those broken
    if any(w not in failed for w in state.pending):  # a repair beside a fixed word changed how it reads
        state.climb(dilation, color_method)
    newcomers = state.new_inventions()  # words a repair made the OCR read where the guidance has none
    leave_inventions_as_drawn(newcomers, mode)
    state.report.words.extend(newcomers)
    state.pending = [w for w in newcomers if wanted(w)]
    state.climb(dilation, color_method)
    return state.finish()


def keep_words_batch(images: torch.Tensor, references: torch.Tensor, guidance: Sequence[OcrResult], *,
                     reader: Reader, resampler_for: Callable[[int], Resampler | None] | None = None,
                     **settings) -> list[GuardResult]:
    """`keep_words` over a batch [B, 3, H, W]; references and guidance hold B items or one for all."""
    batch = images.shape[0]
    for name, count in (("reference", references.shape[0]), ("guidance", len(guidance))):
        if count not in (1, batch):
            raise InvalidInputError(f"'{name}' holds {count} items but 'image' holds {batch}: use 1 or the same")
    results = []
    for i in range(batch):
        resampler = resampler_for(i) if resampler_for is not None else None
        results.append(keep_words(images[i], references[i if references.shape[0] > 1 else 0],
                                  guidance[i if len(guidance) > 1 else 0], reader=reader, resampler=resampler,
                                  **settings))
    return results


def guard_image(image: torch.Tensor, fallback: torch.Tensor, guidance: OcrResult, *, reader: Reader,
                resampler: Resampler | None = None, rounds: int = 2, **settings) -> GuardResult:
    """The Text Guard's name for `keep_words` (`changed words`, the Text Restore result as reference)."""
    if fallback.ndim != 3 or fallback.shape[0] != 3:
        raise InvalidInputError(f"'fallback' must be a [3, H, W] tensor, got shape {tuple(fallback.shape)}")
    return keep_words(image, fallback, guidance, reader=reader, resampler=resampler, rounds=rounds, **settings)


def guard_batch(images: torch.Tensor, fallbacks: torch.Tensor, guidance: Sequence[OcrResult], *, reader: Reader,
                resampler_for: Callable[[int], Resampler | None] | None = None, rounds: int = 2,
                **settings) -> list[GuardResult]:
    """The Text Guard's name for `keep_words_batch` (the fallbacks are the references)."""
    if fallbacks.ndim != 4 or fallbacks.shape[1] != 3:
        raise InvalidInputError(f"'fallback' must be a [B, 3, H, W] tensor, got shape {tuple(fallbacks.shape)}")
    try:
        return keep_words_batch(images, fallbacks, guidance, reader=reader, resampler_for=resampler_for,
                                rounds=rounds, **settings)
    except InvalidInputError as error:
        raise InvalidInputError(str(error).replace("'reference'", "'fallback'")) from None
