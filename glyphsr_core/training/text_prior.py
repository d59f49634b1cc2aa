"""A loss that knows letters: the bundled PP-OCR recogniser as a differentiable torch module.

Pixel losses alone make sharper but not more readable letters (measured: docs/text-restore.md).
TextZoom-style models (TSRN, TPGSR, TATT) add a recogniser's judgement; here that recogniser is the
one the pack reads with (rapidocr's PP-OCR ONNX model, converted with onnx2torch), and `evaluate`
checks the gain with an independent OCR too, so it is not an artefact of this model.

Training-only: onnx2torch and onnx are needed here and nowhere else.
"""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from ..errors import MissingPackageError

#: the recogniser's input height; crops are padded to the widest in the batch (at least REC_MIN_WIDTH)
REC_HEIGHT = 48
REC_MIN_WIDTH = 96
REC_MAX_WIDTH = 480


class TextPriorUnavailableError(MissingPackageError):
    """The packages that turn the bundled recogniser into a torch module are missing."""


def recogniser_path() -> Path:
    """The PP-OCR recognition model inside the installed rapidocr wheel."""
    try:
        import rapidocr
    except ImportError as exc:
        raise TextPriorUnavailableError("the text prior needs rapidocr (pip install -r requirements.txt)") from exc
    models = Path(rapidocr.__file__).parent / "models"
    found = sorted(models.glob("*rec*.onnx"))
    if not found:
        raise FileNotFoundError(f"no recognition model (*rec*.onnx) in {models}")
    return found[-1]


def import_onnx2torch():  # noqa: ANN202 - a module
    """Import onnx2torch; it imports torchvision only for its NMS / RoIAlign converters.

    The recogniser has neither op. Where torchvision is not installed (it does not install beside
    every torch build), an empty placeholder satisfies those two imports while onnx2torch loads and
    is removed again at once, so nothing else sees a torchvision.
    """
    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise TextPriorUnavailableError("the text prior needs onnx and onnx2torch: pip install onnx onnx2torch") from exc
    placeholders: list[str] = []
    try:
        import torchvision  # noqa: F401
    except ImportError:
        vision = types.ModuleType("torchvision")
        ops = types.ModuleType("torchvision.ops")
        ops.roi_align = None  # type: ignore[attr-defined]
        vision.ops = ops  # type: ignore[attr-defined]
        sys.modules["torchvision"], sys.modules["torchvision.ops"] = vision, ops
        placeholders = ["torchvision", "torchvision.ops"]
    try:
        import onnx2torch
    except ImportError as exc:
        raise TextPriorUnavailableError("the text prior needs onnx2torch: pip install onnx2torch") from exc
    finally:
        for name in placeholders:
            sys.modules.pop(name, None)
    return onnx2torch


@dataclass
class Recogniser:
    """The converted recogniser (frozen) and its CTC alphabet (index 0 = blank)."""

    module: torch.nn.Module
    alphabet: list[str]

    def encode(self, text: str) -> list[int] | None:
        """CTC target indices for `text`, or None when a character is outside the alphabet."""
        index = self._index
        ids = [index.get(ch) for ch in text]
        return None if any(i is None for i in ids) or not ids else ids  # type: ignore[return-value]

    def __post_init__(self) -> None:
        self._index = {ch: i for i, ch in enumerate(self.alphabet) if i > 0}


def load_recogniser(path: Path | None = None) -> Recogniser:
    """Convert the ONNX recogniser to torch; its output matches onnxruntime to ~2e-6."""
    import onnx
    from onnx import helper

    onnx2torch = import_onnx2torch()
    model = onnx.load(str(path or recogniser_path()))
    for node in model.graph.node:  # onnx2torch has no auto_pad=SAME_UPPER; these are 2x2, stride 1
        for attribute in list(node.attribute):
            if attribute.name == "auto_pad" and attribute.s == b"SAME_UPPER":
                node.attribute.remove(attribute)
                node.attribute.append(helper.make_attribute("pads", [0, 0, 1, 1]))
    meta = {p.key: p.value for p in model.metadata_props}
    if "character" not in meta:
        raise ValueError("the recognition model carries no 'character' list in its metadata")
    alphabet = ["blank", *meta["character"].splitlines(), " "]
    module = onnx2torch.convert(model).eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return Recogniser(module, alphabet)


def recogniser_batch(crops: list[torch.Tensor]) -> torch.Tensor:
    """RGB crops (3, h, w) in 0..1 -> the recogniser's input: BGR, 48 px high, (x - 0.5) / 0.5, padded.

    Resizing is differentiable (bilinear with antialias), so gradients reach the SR output.
    """
    widths = [max(8, min(REC_MAX_WIDTH, math.ceil(REC_HEIGHT * c.shape[2] / max(1, c.shape[1])))) for c in crops]
    width = max(REC_MIN_WIDTH, max(widths))
    batch = torch.zeros(len(crops), 3, REC_HEIGHT, width, dtype=crops[0].dtype, device=crops[0].device)
    for i, (crop, w) in enumerate(zip(crops, widths)):
        resized = F.interpolate(crop[None], size=(REC_HEIGHT, w), mode="bilinear", antialias=True, align_corners=False)
        batch[i, :, :, :w] = (resized[0].flip(0).clamp(0, 1) - 0.5) / 0.5
    return batch


def ctc_word_loss(recogniser: Recogniser, crops: list[torch.Tensor], targets: list[list[int]]) -> torch.Tensor:
    """Mean CTC loss (per character) of the recogniser reading each crop as its word."""
    probs = recogniser.module(recogniser_batch(crops))  # (N, T, C) probabilities
    log_probs = torch.log(probs.clamp_min(1e-8)).permute(1, 0, 2)  # (T, N, C)
    flat = torch.tensor([i for t in targets for i in t], dtype=torch.long, device=log_probs.device)
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    input_lengths = torch.full((len(crops),), log_probs.shape[0], dtype=torch.long)
    return F.ctc_loss(log_probs, flat, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=True)
