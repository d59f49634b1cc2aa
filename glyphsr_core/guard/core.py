"""Text Guard: the result must not read worse than its guidance.

Read the output, pair its words with the guidance words by place (`fidelity.compare_words`),
and for every word that was changed, lost or invented:

1. re-sample its region (a caller-supplied `Resampler`: ComfyUI sampling in the node, diffusers
   headless) under a feathered mask of the dilated word box, with a stronger text weight and a new
   seed, up to `rounds` times while the word is still wrong; a round is kept only if it fixes a
   word and the image's word F1 does not drop;
2. if still wrong, paste the fallback's pixels (the stage-1 restore) into the box, feathered and
   colour matched to the output (`colorfix`), so the letters are at least the restorer's letters;
   a word that still does not read is pasted again with a margin of one, then three word heights.

Only pixels under a written mask change; everything else stays bit-identical. Every step is
kept only if the image's word F1 does not drop, so the result never reads worse than the output
(against the guidance, by this OCR). OCR runs once on the output, once per re-sample round and
one to three times for the pastes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..sampling.colorfix import METHODS, color_fix, match_reference
from ..text.fidelity import DEFAULT_MIN_OVERLAP, INVENTED, KEPT, FidelityResult, compare_words
from ..types import Box, OcrResult
from .masks import mask_crop, word_mask
from .report import COMPOSITED, RESAMPLED, UNPLACED, GuardReport, WordRepair
from ..ocr import read_text

#: image [3, H, W] in 0..1 -> the words read from it
Reader = Callable[[torch.Tensor], OcrResult]
#: text weight of re-sample round i is `1 + TEXT_WEIGHT_STEP * (i + 1)` times the caller's
TEXT_WEIGHT_STEP = 0.25
#: pixels of context around the masked boxes handed to the resampler and to the colour fix
CONTEXT = 32
COLOR_METHODS = (*METHODS, "none")
#: margins (in word heights beyond `dilation`) of the pastes after the first, for words still wrong
WIDER_PASTES = (1.0, 3.0)


@dataclass(frozen=True)
class ResampleRound:
    """What changes between re-sample rounds: the seed (caller's seed + offset) and the text weight;
    `window` (x0, y0, x1, y1) is where the crop sits in the image (before any padding to `align`)."""

    index: int
    seed_offset: int
    text_weight: float
    window: tuple[int, int, int, int] | None = None


def resample_round(index: int) -> ResampleRound:
    return ResampleRound(index=index, seed_offset=index + 1, text_weight=1.0 + TEXT_WEIGHT_STEP * (index + 1))


#: (crop [1, 3, h, w] in 0..1, mask [1, 1, h, w] in 0..1, round) -> re-sampled crop [1, 3, h, w];
#: h and w are multiples of the guard's `align`; only the masked part of the answer is used
Resampler = Callable[[torch.Tensor, torch.Tensor, ResampleRound], torch.Tensor]


@dataclass
class GuardResult:
    image: torch.Tensor  # [3, H, W], the input's dtype
    mask: torch.Tensor  # [H, W] float, how much of each pixel was rewritten (0 = bit-identical)
    report: GuardReport


def ocr_reader(min_confidence: float = 0.5, ocr_scale: str | float = "auto") -> Reader:
    """The project's OCR (`ocr.read_text`) as a Reader."""
    def read(image: torch.Tensor) -> OcrResult:
        array = image.detach().to("cpu", torch.float32).clamp(0, 1).permute(1, 2, 0).numpy()
        return read_text(np.ascontiguousarray(array), min_confidence=min_confidence, ocr_scale=ocr_scale)

    return read


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _repairs(result: FidelityResult) -> list[WordRepair]:
    repairs, index = [], 0
    for outcome in result.outcomes:
        expected, found = outcome.expected, outcome.found
        repairs.append(WordRepair(expected=expected and expected.text, found=found and found.text,
                                  status=outcome.status, box=_union(expected and expected.box, found and found.box),
                                  guidance_index=None if expected is None else index))
        if expected is not None:
            index += 1
    return repairs


def _inside(box: Box | None, point_box: Box | None) -> bool:
    if box is None or point_box is None:
        return False
    cx, cy = (point_box[0] + point_box[2]) / 2, (point_box[1] + point_box[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def _reading(word: WordRepair, result: FidelityResult) -> tuple[str, str | None]:
    """(status, text read) of a repair's word in a new comparison."""
    if word.guidance_index is not None:
        outcome = result.outcomes[word.guidance_index]
        return outcome.status, outcome.found and outcome.found.text
    for outcome in result.outcomes:
        if outcome.status == INVENTED and _inside(word.box, outcome.found.box):
            return INVENTED, outcome.found.text
    return KEPT, None  # the invented word is gone


def _blend(current: torch.Tensor, patch: torch.Tensor, mask: torch.Tensor,
           window: tuple[int, int, int, int]) -> torch.Tensor:
    """`current` with `patch` (the window's new pixels) blended in by `mask`; unmasked pixels untouched."""
    x0, y0, x1, y1 = window
    out = current.clone()
    region = out[:, y0:y1, x0:x1]
    weight = mask[y0:y1, x0:x1].to(region.dtype)
    mixed = region.float() * (1 - weight) + patch.to(region.device).float() * weight
    out[:, y0:y1, x0:x1] = torch.where(weight > 0, mixed.to(region.dtype), region)
    return out


def _resample(current: torch.Tensor, mask: torch.Tensor, resampler: Resampler, round_: ResampleRound,
              align: int) -> torch.Tensor:
    window = mask_crop(mask, CONTEXT, align)
    x0, y0, x1, y1 = window
    crop = current[:, y0:y1, x0:x1].float()[None]
    crop_mask = mask[y0:y1, x0:x1][None, None]
    height, width = crop.shape[-2:]
    pad_h, pad_w = (-height) % align, (-width) % align
    if pad_h or pad_w:  # the image side is not a multiple of `align`: pad the crop, cut the answer back
        crop = F.pad(crop, (0, pad_w, 0, pad_h), mode="replicate")
        crop_mask = F.pad(crop_mask, (0, pad_w, 0, pad_h))
    answer = resampler(crop, crop_mask, replace(round_, window=window))
    if not isinstance(answer, torch.Tensor) or tuple(answer.shape) != tuple(crop.shape):
        got = tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__
        raise ValueError(f"the re-sampler must return a crop of shape {tuple(crop.shape)}, got {got}")
    patch = answer[0, :, :height, :width].clamp(0, 1)
    return _blend(current, patch, mask, window)


def _composite(current: torch.Tensor, fallback: torch.Tensor, mask: torch.Tensor, color_method: str) -> torch.Tensor:
    window = mask_crop(mask, CONTEXT)
    x0, y0, x1, y1 = window
    patch = fallback[:, y0:y1, x0:x1].float()
    if color_method != "none":
        patch = color_fix(patch[None], current[:, y0:y1, x0:x1].float()[None], color_method)[0]
    return _blend(current, patch, mask, window)


def guard_image(image: torch.Tensor, fallback: torch.Tensor, guidance: OcrResult, *, reader: Reader,
                resampler: Resampler | None = None, rounds: int = 2, dilation: int = 8,
                min_overlap: float = DEFAULT_MIN_OVERLAP, color_method: str = "wavelet", align: int = 8,
                on_step: Callable[[str], None] | None = None) -> GuardResult:
    """Repair the words of `image` [3, H, W] (0..1) that do not read as `guidance` says.

    `fallback` [3, h, w] is resized to the image. `on_step(name)` is called after every OCR pass
    (progress, and the place to raise on Cancel).
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"'image' must be a [3, H, W] tensor, got shape {tuple(image.shape)}")
    if fallback.ndim != 3 or fallback.shape[0] != 3:
        raise ValueError(f"'fallback' must be a [3, H, W] tensor, got shape {tuple(fallback.shape)}")
    if rounds < 0:
        raise ValueError(f"rounds must be 0 or more, got {rounds}")
    if color_method not in COLOR_METHODS:
        raise ValueError(f"color_method must be one of {COLOR_METHODS}, got {color_method!r}")
    if align < 1:
        raise ValueError(f"align must be at least 1, got {align}")
    step = on_step or (lambda name: None)
    height, width = image.shape[-2:]
    fallback = match_reference(fallback.float()[None], image.float()[None])[0]
    report = GuardReport()

    def read_and_compare(picture: torch.Tensor, name: str) -> FidelityResult:
        found = reader(picture)
        report.ocr_passes += 1
        step(name)
        return compare_words(guidance, found, min_overlap=min_overlap)

    result = read_and_compare(image, "read output")
    report.words = _repairs(result)
    report.f1_before = report.f1_after = result.counts.f1
    for word in report.words:
        if word.needs_repair and word.box is None:
            word.action = UNPLACED
    pending = [w for w in report.words if w.needs_repair and w.box is not None]
    current, written = image, torch.zeros(height, width)
    f1 = result.counts.f1

    def settle(candidate: torch.Tensor, mask: torch.Tensor, new: FidelityResult, action: str,
               tried: list[WordRepair]) -> list[WordRepair]:
        """Adopt a candidate image; the words it fixed leave the pending list."""
        nonlocal current, written, f1, result
        current, f1, result = candidate, new.counts.f1, new
        written = torch.maximum(written, mask)
        fixed = []
        for word in tried:
            word.action = action
            if _reading(word, new)[0] == KEPT:
                fixed.append(word)
        return [w for w in pending if w not in fixed]

    if resampler is not None:
        for index in range(rounds):
            if not pending:
                break
            mask = word_mask([w.box for w in pending], width, height, dilation)
            candidate = _resample(current, mask, resampler, resample_round(index), align)
            report.rounds_run += 1
            for word in pending:
                word.rounds += 1
            new = read_and_compare(candidate, f"re-sample round {index + 1}")
            if new.counts.f1 >= f1 and any(_reading(w, new)[0] == KEPT for w in pending):
                pending = settle(candidate, mask, new, RESAMPLED, list(pending))
    # the paste: at `dilation` first; words still wrong get a margin of one, then three word heights
    # of the fallback's background too, which the OCR detector often needs to find a word again
    for context in (0.0, *WIDER_PASTES):
        if not pending:
            break
        mask = word_mask([w.box for w in pending], width, height, dilation, context)
        candidate = _composite(current, fallback, mask, color_method)
        new = read_and_compare(candidate, "composite" if context == 0 else f"composite, margin {context:g} x height")
        if new.counts.f1 >= f1:
            pending = settle(candidate, mask, new, COMPOSITED, list(pending))

    for word in report.words:
        if word.box is not None or word.guidance_index is not None:
            word.final_status, word.final = _reading(word, result)
            if word.status == INVENTED and word.final_status == KEPT:
                word.final_status = None  # gone
    report.f1_after = f1
    report.changed_pixels = int((current != image).any(dim=0).sum())
    return GuardResult(image=current, mask=written, report=report)


def guard_batch(images: torch.Tensor, fallbacks: torch.Tensor, guidance: Sequence[OcrResult], *, reader: Reader,
                resampler_for: Callable[[int], Resampler | None] | None = None,
                **settings) -> list[GuardResult]:
    """`guard_image` over a batch [B, 3, H, W]; fallbacks and guidance hold B items or one for all."""
    batch = images.shape[0]
    for name, count in (("fallback", fallbacks.shape[0]), ("guidance", len(guidance))):
        if count not in (1, batch):
            raise ValueError(f"'{name}' holds {count} items but 'image' holds {batch}: use 1 or the same")
    results = []
    for i in range(batch):
        resampler = resampler_for(i) if resampler_for is not None else None
        results.append(guard_image(images[i], fallbacks[i if fallbacks.shape[0] > 1 else 0],
                                   guidance[i if len(guidance) > 1 else 0], reader=reader, resampler=resampler,
                                   **settings))
    return results
