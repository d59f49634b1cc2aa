"""The pieces Keep Words is built from: readers, re-samplers, word bookkeeping, masked blending.

`keep_words.keep_words` runs the repair; this module holds what it and the nodes share: the OCR
as a `Reader`, the `Resampler` contract and its rounds (a new seed and a stronger text weight each
round), the pairing of a reading with the words under repair, and blending a window's new pixels
in under a feathered mask so that unmasked pixels stay bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..ocr import read_text
from ..sampling.colorfix import METHODS
from ..text.fidelity import INVENTED, KEPT, FidelityResult
from ..types import Box, OcrResult
from .masks import mask_crop
from .report import GuardReport, WordRepair

#: image [3, H, W] in 0..1 -> the words read from it
Reader = Callable[[torch.Tensor], OcrResult]
#: text weight of re-sample round i is `1 + TEXT_WEIGHT_STEP * (i + 1)` times the caller's
TEXT_WEIGHT_STEP = 0.25
#: pixels of context around the masked boxes handed to the resampler and to the colour fix
CONTEXT = 32
COLOR_METHODS = (*METHODS, "none")


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


def repairs_of(result: FidelityResult) -> list[WordRepair]:
    repairs, index = [], 0
    for outcome in result.outcomes:
        expected, found = outcome.expected, outcome.found
        repairs.append(WordRepair(expected=expected and expected.text, found=found and found.text,
                                  status=outcome.status, box=_union(expected and expected.box, found and found.box),
                                  guidance_index=None if expected is None else index))
        if expected is not None:
            index += 1
    return repairs


def centre_inside(box: Box | None, point_box: Box | None) -> bool:
    """Whether the centre of `point_box` lies inside `box`."""
    if box is None or point_box is None:
        return False
    cx, cy = (point_box[0] + point_box[2]) / 2, (point_box[1] + point_box[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def reading_of(word: WordRepair, result: FidelityResult) -> tuple[str, str | None]:
    """(status, text read) of a repair's word in a new comparison."""
    if word.guidance_index is not None:
        outcome = result.outcomes[word.guidance_index]
        return outcome.status, outcome.found and outcome.found.text
    for outcome in result.outcomes:
        if outcome.status == INVENTED and centre_inside(word.box, outcome.found.box):
            return INVENTED, outcome.found.text
    return KEPT, None  # the invented word is gone


def blend_window(current: torch.Tensor, patch: torch.Tensor, mask: torch.Tensor,
           window: tuple[int, int, int, int]) -> torch.Tensor:
    """`current` with `patch` (the window's new pixels) blended in by `mask`; unmasked pixels untouched."""
    x0, y0, x1, y1 = window
    out = current.clone()
    region = out[:, y0:y1, x0:x1]
    weight = mask[y0:y1, x0:x1].to(region.dtype)
    mixed = region.float() * (1 - weight) + patch.to(region.device).float() * weight
    out[:, y0:y1, x0:x1] = torch.where(weight > 0, mixed.to(region.dtype), region)
    return out


def resample_window(current: torch.Tensor, mask: torch.Tensor, resampler: Resampler, round_: ResampleRound,
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
    return blend_window(current, patch, mask, window)
