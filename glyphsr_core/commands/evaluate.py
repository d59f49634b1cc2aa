"""`evaluate`: OCR F1 of upscaled images against ground-truth words, one table row per method.

For every image of a dataset the LQ input is made at `--scale` (or taken from the synthetic
corpus), each method produces an image at the (cropped) HQ size, OCR reads it, and the words are
scored against the ground truth (`glyphsr_core.text.metrics`). Methods: `nearest`, `bicubic`,
`lanczos` (plain resizes of the LQ input), `hq` (the HQ image itself: the ceiling), `restore`
(the bundled Text Restore network; `restore:FILE` for another restorer file), and `dir:PATH`
(images another tool produced, named by image id: `<id>.png` / `.jpg` / ...; make their inputs
with `make-lq`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..data.corpus import IMAGE_SUFFIXES
from ..data.datasets import ImageDecodeError, load_dataset, lq_for
from ..data.degrade import DegradationError, check_scale
from ..errors import InputNotFoundError, InvalidInputError
from ..ocr import OcrUnavailableError
from ..restore.cli_support import load_cli_restorer
from ..text.metrics import WordCounts, mean_finite, psnr, ssim, word_aligned_errors, word_counts

logger = logging.getLogger(__name__)

RESIZE_METHODS = {"nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC,
                  "lanczos": Image.Resampling.LANCZOS}
BUILTIN_METHODS = (*RESIZE_METHODS, "hq", "restore")


def parse_method(spec: str) -> tuple[str, Path | None]:
    """`bicubic` -> ("bicubic", None); `dir:out/x4` -> ("dir:out/x4", Path("out/x4")); `restore:F.safetensors`."""
    if spec in BUILTIN_METHODS:
        return spec, None
    if spec.startswith("restore:") and len(spec) > 8:
        path = Path(spec[8:])
        if not path.is_file():
            raise InputNotFoundError(f"--method {spec}: restorer file not found: {path}")
        return spec, path
    if spec.startswith("dir:") and len(spec) > 4:
        folder = Path(spec[4:])
        if not folder.is_dir():
            raise InputNotFoundError(f"--method {spec}: folder not found: {folder}")
        return spec, folder
    raise InvalidInputError(f"unknown --method {spec!r}; expected one of {', '.join(BUILTIN_METHODS)}, restore:FILE or dir:PATH")


def _restorers(parsed: Sequence[tuple[str, Path | None]], scale: int) -> dict[str, Any]:
    """Load each restorer method's network once, before the first image."""
    from ..restore.run import SUPPORTED_SCALES

    loaded = {}
    for name, path in parsed:
        if name == "restore" or name.startswith("restore:"):
            if scale not in SUPPORTED_SCALES:
                raise InvalidInputError(f"--method {name} upscales x{'/x'.join(map(str, SUPPORTED_SCALES))}; got --scale {scale}")
            loaded[name] = load_cli_restorer(path)
    return loaded


def polygon_mask(polygons: Sequence[Sequence[tuple[float, float]]], size: tuple[int, int]) -> np.ndarray:
    """Boolean HxW mask of the filled polygons."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for polygon in polygons:
        draw.polygon([(float(x), float(y)) for x, y in polygon], fill=255)
    return np.asarray(mask) > 0


def find_output(folder: Path, sample_id: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        candidate = folder / f"{sample_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None


@dataclass
class MethodResult:
    name: str
    counts: Any = None  # metrics.WordCounts
    char_edits: int = 0
    gt_chars: int = 0
    psnr_text: list[float] = field(default_factory=list)
    psnr_all: list[float] = field(default_factory=list)
    ssim_all: list[float] = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    resized: list[str] = field(default_factory=list)
    per_image: list[dict[str, Any]] = field(default_factory=list)
    started: float = 0.0  # when the image now being scored began (perf_counter)

    def summary(self) -> dict[str, Any]:
        c = self.counts
        return {
            "images": self.images, "precision": c.precision, "recall": c.recall, "f1": c.f1,
            "paper_precision": c.paper_precision, "paper_recall": c.paper_recall, "paper_f1": c.paper_f1,
            "tp": c.tp, "n_pred": c.n_pred, "n_gt": c.n_gt,
            "cer": self.char_edits / self.gt_chars if self.gt_chars else float("nan"),
            "psnr_text": mean_finite(self.psnr_text), "psnr": mean_finite(self.psnr_all), "ssim": mean_finite(self.ssim_all),
            "images_per_s": self.images / self.seconds if self.seconds > 0 else float("nan"),
            "skipped": {k: len(v) for k, v in self.skipped.items()}, "resized_to_hq": len(self.resized),
        }


def evaluate(dataset_name: str, root: Path, scale: int, methods: Sequence[str], *, split: str = "test",
             degradation: str = "bicubic", seed: int = 0, limit: int | None = None, min_confidence: float = 0.5,
             ocr_scale: str = "auto", ocr: Callable[..., Any] | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run every method on the dataset; returns the JSON-ready report (summaries + per-image rows)."""
    scale = check_scale(scale)
    parsed = [parse_method(m) for m in methods]
    if not parsed:
        raise InvalidInputError("give at least one --method")
    if limit is not None and limit < 1:
        raise InvalidInputError(f"--limit must be at least 1, got {limit}")
    if ocr is None:
        from ..ocr import read_text as ocr
    restorers = _restorers(parsed, scale)
    dataset = load_dataset(dataset_name, root, split)
    skipped: dict[str, list[str]] = {k: list(v) for k, v in dataset.skipped.items()}
    samples = dataset.samples[:limit] if limit else dataset.samples
    results = {name: MethodResult(name, WordCounts()) for name, _ in parsed}
    evaluated = 0
    lq_sources: set[str] = set()
    for index, sample in enumerate(samples, start=1):
        if progress is not None:
            progress(index, len(samples))
        try:
            hq = sample.load_image()
            cropped, lq, params = lq_for(sample, hq, scale, degradation, seed)
            lq_sources.add(degradation if params is not None else "stored in the corpus")
        except (ImageDecodeError, FileNotFoundError) as exc:
            skipped.setdefault("undecodable or missing image", []).append(f"{sample.id}: {exc}")
            continue
        except DegradationError as exc:
            skipped.setdefault(f"too small for x{scale}", []).append(f"{sample.id}: {exc}")
            continue
        gt = sample.gt_words
        evaluated += 1
        mask = polygon_mask([w.polygon for w in sample.words if not w.ignore], cropped.size)
        hq_array = np.asarray(cropped)
        for name, folder in parsed:
            output = _method_output(name, folder, sample.id, lq, cropped, scale, restorers, results[name])
            if output is not None:
                _score(results[name], sample.id, output, gt, mask, hq_array, ocr, min_confidence, ocr_scale)
    if evaluated == 0:
        reasons = "; ".join(f"{k}: {len(v)}" for k, v in skipped.items()) or "the dataset is empty"
        raise InvalidInputError(f"no image of {dataset_name} at {root} could be evaluated ({reasons})")
    return {
        "dataset": dataset_name, "root": str(root), "split": split, "scale": scale, "degradation": " + ".join(sorted(lq_sources)),
        "seed": seed, "min_confidence": min_confidence, "ocr_scale": ocr_scale,
        "images_listed": len(dataset.samples) + sum(len(v) for v in dataset.skipped.values()),
        "images_evaluated": evaluated, "skipped": skipped,
        "methods": {name: {"summary": r.summary(), "skipped": r.skipped, "resized_to_hq": r.resized,
                           "per_image": r.per_image} for name, r in results.items()},
    }


def _method_output(name: str, folder: Path | None, sample_id: str, lq: Image.Image, cropped: Image.Image,
                   scale: int, restorers: dict[str, Any], result: MethodResult) -> Image.Image | None:
    """One method's image at the HQ size; None (and a reason in `result.skipped`) when it has none.
    Starts the method's clock (`result.started`): the OCR that scores it counts too."""
    result.started = time.perf_counter()
    if name in RESIZE_METHODS:
        return lq.resize(cropped.size, RESIZE_METHODS[name])
    if name == "hq":
        return cropped
    if name in restorers:
        from ..restore import restore_pil  # torch: not for --help

        return restore_pil(restorers[name].model, restorers[name].scale, lq, scale)
    path = find_output(folder, sample_id)  # type: ignore[arg-type]
    if path is None:
        result.skipped.setdefault("no output image", []).append(sample_id)
        return None
    try:
        with Image.open(path) as opened:
            output = opened.convert("RGB")
    except OSError as exc:
        result.skipped.setdefault("undecodable output", []).append(f"{sample_id}: {exc}")
        return None
    if output.size != cropped.size:
        result.resized.append(sample_id)
        output = output.resize(cropped.size, Image.Resampling.BICUBIC)
    return output


def _score(result: MethodResult, sample_id: str, output: Image.Image, gt: list[str], mask: np.ndarray,
           hq_array: np.ndarray, ocr: Callable[..., Any], min_confidence: float, ocr_scale: str) -> None:
    """OCR one method's output and add its word counts, character errors, PSNR and SSIM to `result`."""
    read = ocr(output, min_confidence=min_confidence, ocr_scale=ocr_scale)
    result.seconds += time.perf_counter() - result.started
    result.images += 1
    pred = list(read.words)
    counts = word_counts(pred, gt)
    result.counts = result.counts + counts
    edits, chars = word_aligned_errors(pred, gt)
    result.char_edits += edits
    result.gt_chars += chars
    out_array = np.asarray(output)
    p_text, p_all, s_all = psnr(out_array, hq_array, mask), psnr(out_array, hq_array), ssim(out_array, hq_array)
    result.psnr_text.append(p_text)
    result.psnr_all.append(p_all)
    result.ssim_all.append(s_all)
    result.per_image.append({"id": sample_id, "pred": pred, "gt": gt, "tp": counts.tp, "f1": counts.f1,
                             "paper": [counts.paper_tp, counts.paper_fp, counts.paper_fn],
                             "cer": edits / chars if chars else None, "psnr_text": _finite(p_text),
                             "psnr": _finite(p_all), "ssim": _finite(s_all)})


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _json_safe(value: Any) -> Any:
    """Strict JSON: infinite / NaN figures (identical images, empty masks) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def format_table(report: dict[str, Any]) -> str:
    header = f"{'method':<24} {'images':>6} {'P':>6} {'R':>6} {'F1':>6} {'F1pap':>6} {'CER':>6} {'PSNRtxt':>8} {'PSNR':>6} {'SSIM':>6} {'img/s':>6}"
    lines = [f"{report['dataset']} x{report['scale']} (LQ: {report['degradation']}), {report['images_evaluated']} images", header]
    for name, data in report["methods"].items():
        s = data["summary"]
        lines.append(f"{name:<24} {s['images']:>6} {s['precision']:>6.3f} {s['recall']:>6.3f} {s['f1']:>6.3f} "
                     f"{s['paper_f1']:>6.3f} {s['cer']:>6.3f} {s['psnr_text']:>8.2f} {s['psnr']:>6.2f} {s['ssim']:>6.3f} "
                     f"{s['images_per_s']:>6.2f}")
    return "\n".join(lines)


def format_skips(report: dict[str, Any]) -> list[str]:
    lines = [f"skipped images: {len(v)} ({reason}), e.g. {v[0]}" for reason, v in report["skipped"].items() if v]
    for name, data in report["methods"].items():
        for reason, items in data["skipped"].items():
            lines.append(f"{name}: {len(items)} image(s) skipped ({reason}), e.g. {items[0]}")
        if data["resized_to_hq"]:
            lines.append(f"{name}: {len(data['resized_to_hq'])} output(s) not at the HQ size were resized (bicubic)")
    return lines


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=("synthetic", "svt", "ctw1500", "cute80"))
    parser.add_argument("--root", type=Path, required=True, help="dataset folder (a corpus folder for synthetic)")
    parser.add_argument("--scale", type=int, default=4, help="upscale factor (LQ = HQ / scale)")
    parser.add_argument("--method", action="append", default=None,
                        help="nearest, bicubic, lanczos, hq, restore, restore:FILE or dir:PATH (repeat; default: bicubic)")
    parser.add_argument("--split", default="test", help="SVT annotation file to read (test or train)")
    parser.add_argument("--degradation", default="bicubic", choices=("bicubic", "realistic", "paper"),
                        help="how LQ inputs are made for real datasets (a synthetic corpus uses its stored LQ)")
    parser.add_argument("--seed", type=int, default=0, help="degradation seed (realistic/paper)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    parser.add_argument("--min-confidence", type=float, default=0.5, help="OCR words below this are dropped")
    parser.add_argument("--ocr-scale", default="auto", help="enlarge before OCR: auto or a factor from 1 to 8")
    parser.add_argument("--json", type=Path, default=None, help="write the full report (per image) here")


def run(args: argparse.Namespace) -> int:
    methods = args.method or ["bicubic"]
    step = 10

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            logger.info("image %d/%d", done, total)

    try:
        report = evaluate(args.dataset, args.root, args.scale, methods, split=args.split, degradation=args.degradation,
                          seed=args.seed, limit=args.limit, min_confidence=args.min_confidence,
                          ocr_scale=args.ocr_scale, progress=progress)
    except OcrUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    for line in format_skips(report):
        print(line)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_json_safe(report), indent=1, allow_nan=False), encoding="utf-8")
        print(f"full results: {args.json}")
    return 0
