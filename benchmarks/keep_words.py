"""Keep Words benchmark: any upscaler's output with a faithful reference's words put back.

    python benchmarks/keep_words.py UPSCALER [UPSCALER ...] --set data/eval100 [--set data/eval100_realistic]
        [--reference bicubic|textrestore] [--limit 40] [--ocr rapidocr,tesseract] [--cache DIR]
        [--raw-only] [--crops docs/images/keep_words_crops.png] [--json FILE]
        [--core OTHER_CHECKOUT]

UPSCALER is a file spandrel loads (e.g. the public models `benchmarks/public_upscalers.py` converts,
for benchmarks only), `textrestore` (the bundled restorer) or `dir:PATH` (PATH/<id>.png made by
another tool from the set's `lq_x4/` images). A `--set` is a `make-corpus` folder (the README's
eval sets: `make-corpus --n 100 --size 512 --scales 4,8 --seed 0 --degradation bicubic|realistic`);
its stored x4 LQ images are the inputs, exactly as `evaluate --dataset synthetic --scale 4` uses them.

Per upscaler and set, the upscaler's raw output is read, then repaired by Keep Words with the
reference (bicubic of the LQ, or the Text Restore result) and the guidance words (the bundled OCR's
reading of that reference: how the node is wired). Printed, micro-averaged word F1 against the
ground truth as `evaluate` computes it, for the bundled OCR (RapidOCR) and Tesseract:
  raw / ref / kept word F1; changed = share of the image's pixels Keep Words rewrote; seam = mean
  absolute luminance gradient in the band around the repaired region's edge (the feather ring plus
  2 px either side of it), kept / raw at the same pixels (1.00 = no extra edge; a pasted rectangle
  shows as > 1; a blurred band as < 1); sharp = mean squared Laplacian inside the fully rewritten
  pixels, kept / raw (1.00 = as sharp as the upscaler; a blurry paste < 1); s/img = seconds of the
  Keep Words call per image (its own OCR passes included).
The issue's targets are printed as PASS/FAIL lines: kept F1 >= reference F1 - 0.02 and kept F1 >=
raw F1 + 0.3, per OCR.

`--core OTHER_CHECKOUT` measures another checkout's glyphsr_core (e.g. before and after a change).

Upscaled outputs and references are cached as PNG under `--cache` (default ~/.cache/glyphsr-bench/out),
OCR readings under `--cache`/ocr; reruns read them back. Never point `--cache` into the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent


def _core_arg(argv: list[str]) -> str | None:
    for index, arg in enumerate(argv):
        if arg == "--core" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--core="):
            return arg.split("=", 1)[1]
    return None


#: the checkout whose glyphsr_core is measured (--core, read before the imports below; default: this one)
CORE = Path(_core_arg(sys.argv[1:]) or HERE.parent).resolve()
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(CORE))

from glyphsr_core.text.fidelity import KEPT  # noqa: E402
from glyphsr_core.text.metrics import WordCounts, word_counts  # noqa: E402
from glyphsr_core.types import OcrResult  # noqa: E402

DEFAULT_CACHE = Path.home() / ".cache" / "glyphsr-bench" / "out"
SCALE = 4
F1_WITHIN, F1_GAIN = 0.02, 0.30
OCRS = ("rapidocr", "tesseract")
CROP_MAX_WIDTH = 180  # pixels of word box shown in the crops (words are chosen that fit)


# ---------------------------------------------------------------- the one call measured
def keep(image: torch.Tensor, reference: torch.Tensor, guidance: OcrResult, *, reader, mode: str, dilation: int):
    """Keep Words on one image -> GuardResult (.image, .mask, .report with f1_before/after, words, changed_pixels)."""
    from glyphsr_core.guard import keep_words

    return keep_words(image, reference, guidance, reader=reader, mode=mode, dilation=dilation)


# ---------------------------------------------------------------- images and caches
def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), np.float32) / 255).permute(2, 0, 1).contiguous()


def to_pil(tensor: torch.Tensor) -> Image.Image:
    array = tensor.detach().float().clamp(0, 1).permute(1, 2, 0).numpy()
    return Image.fromarray((array * 255 + 0.5).astype(np.uint8))


def digest(image: Image.Image) -> str:
    return hashlib.sha1(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


class Readers:
    """The bundled OCR and Tesseract, with readings cached by image content (memory + disk)."""

    def __init__(self, cache: Path):
        self.folder = cache / "ocr"
        self.memo: dict[tuple[str, str], list] = {}

    def _path(self, ocr: str, key: str) -> Path:
        return self.folder / ocr / key[:2] / f"{key}.json"

    def rapid(self, image: Image.Image) -> OcrResult:
        key = digest(image)
        if ("rapidocr", key) in self.memo:
            return self.memo["rapidocr", key]
        path = self._path("rapidocr", key)
        if path.exists():
            result = OcrResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        else:
            from glyphsr_core.ocr import read_text

            result = read_text(image, min_confidence=0.5, ocr_scale="auto")
            self._store(path, result.to_dict())
        self.memo["rapidocr", key] = result
        return result

    def tesseract(self, image: Image.Image) -> list[str]:
        key = digest(image)
        path = self._path("tesseract", key)
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        from text_restore import tesseract_ocr  # the README's Tesseract settings (psm 11, conf >= 50)

        words = list(tesseract_ocr(image).words)
        self._store(path, words)
        return words

    def words(self, ocr: str, image: Image.Image) -> list[str]:
        return self.rapid(image).words if ocr == "rapidocr" else self.tesseract(image)

    def _store(self, path: Path, value) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")

    def guard_reader(self):
        """The reader Keep Words gets: the bundled OCR as the node uses it, not served from the cache
        (so its time is real), but its readings are remembered for scoring the result."""
        from glyphsr_core.guard import ocr_reader

        read = ocr_reader(0.5)

        def reader(image: torch.Tensor) -> OcrResult:
            result = read(image)
            key = digest(to_pil(image))
            self.memo["rapidocr", key] = result
            self._store(self._path("rapidocr", key), result.to_dict())
            return result

        return reader


@dataclass
class Sample:
    id: str
    gt: list[str]
    lq: Image.Image
    size: tuple[int, int]


def load_set(root: Path, limit: int | None) -> list[Sample]:
    from glyphsr_core.data.datasets import load_dataset, lq_for

    dataset = load_dataset("synthetic", root, "test")
    samples = []
    for sample in dataset.samples[:limit]:
        hq = sample.load_image()
        cropped, lq, _ = lq_for(sample, hq, SCALE, "bicubic", 0)
        samples.append(Sample(sample.id, sample.gt_words, lq, cropped.size))
    return samples


class Upscaler:
    """Raw x4 outputs of one upscaler for one set, cached as PNG under cache/<name>/<set>/<id>.png."""

    def __init__(self, spec: str, cache: Path):
        self.spec = spec
        if spec.startswith("dir:"):
            self.name, self.folder = Path(spec[4:]).name, Path(spec[4:])
        else:
            self.name, self.folder = (spec if spec == "textrestore" else Path(spec).stem), None
        self.cache = cache
        self._run = None
        self.seconds: list[float] = []

    def output(self, set_name: str, sample: Sample) -> Image.Image:
        folder = self.folder or self.cache / self.name / set_name
        path = folder / f"{sample.id}.png"
        if path.exists():
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        elif self.folder is not None:
            raise FileNotFoundError(f"{path} is missing: upscale {set_name}'s lq_x4/{sample.id}.png into {self.folder}")
        else:
            if self._run is None:
                from upscale_folder import load_upscaler

                self._run, _ = load_upscaler(self.spec)
            start = time.perf_counter()
            with torch.inference_mode():
                out = self._run(to_tensor(sample.lq)[None])[0]
            self.seconds.append(time.perf_counter() - start)
            image = to_pil(out)
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path)
        if image.size != sample.size:  # as `evaluate` does with outputs of another size
            image = image.resize(sample.size, Image.Resampling.BICUBIC)
        return image


def reference_image(kind: str, set_name: str, sample: Sample, restorer: Upscaler | None) -> Image.Image:
    if kind == "bicubic":
        return sample.lq.resize(sample.size, Image.Resampling.BICUBIC)
    return restorer.output(set_name, sample)  # type: ignore[union-attr]


# ---------------------------------------------------------------- look measures
def luma(image: torch.Tensor) -> torch.Tensor:
    return (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]) * 255


def gradient(y: torch.Tensor) -> torch.Tensor:
    dx = F.pad((y[:, 1:] - y[:, :-1]).abs(), (0, 1))
    dy = F.pad((y[1:] - y[:-1]).abs(), (0, 0, 0, 1))
    return dx + dy


def laplacian(y: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])[None, None]
    return F.conv2d(F.pad(y[None, None], (1, 1, 1, 1), mode="replicate"), kernel)[0, 0]


def _grow(region: torch.Tensor, pixels: int) -> torch.Tensor:
    return F.max_pool2d(region.float()[None, None], 2 * pixels + 1, 1, pixels)[0, 0] > 0


def seam_band(mask: torch.Tensor, pixels: int = 2) -> torch.Tensor:
    """The feather ring (0 < mask < 1) plus `pixels` either side of the written region's edge."""
    written = mask > 0
    edge = _grow(written, pixels) & _grow(~written, pixels)
    return edge | ((mask > 0) & (mask < 1))


@dataclass
class Look:
    band_kept: float = 0.0
    band_raw: float = 0.0
    lap_kept: float = 0.0
    lap_raw: float = 0.0

    def add(self, raw: torch.Tensor, kept: torch.Tensor, mask: torch.Tensor) -> None:
        if not bool((mask > 0).any()):
            return
        y_raw, y_kept = luma(raw.float()), luma(kept.float())
        band = seam_band(mask)
        self.band_kept += float(gradient(y_kept)[band].sum())
        self.band_raw += float(gradient(y_raw)[band].sum())
        inside = mask >= 0.999
        self.lap_kept += float((laplacian(y_kept)[inside] ** 2).sum())
        self.lap_raw += float((laplacian(y_raw)[inside] ** 2).sum())

    @property
    def seam(self) -> float:
        return self.band_kept / self.band_raw if self.band_raw else math.nan

    @property
    def sharp(self) -> float:
        return self.lap_kept / self.lap_raw if self.lap_raw else math.nan


# ---------------------------------------------------------------- the run
@dataclass
class Row:
    upscaler: str
    set: str
    images: int = 0
    raw: dict[str, WordCounts] = field(default_factory=lambda: {o: WordCounts() for o in OCRS})
    ref: dict[str, WordCounts] = field(default_factory=lambda: {o: WordCounts() for o in OCRS})
    kept: dict[str, WordCounts] = field(default_factory=lambda: {o: WordCounts() for o in OCRS})
    changed: float = 0.0
    seconds: float = 0.0
    repaired_words: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    look: Look = field(default_factory=Look)
    per_image: list[dict] = field(default_factory=list)


def run_set(upscaler: Upscaler, set_root: Path, samples: list[Sample], args, readers: Readers,
            restorer: Upscaler | None, api: str, crops: list) -> Row:
    set_name = set_root.name
    row = Row(upscaler.name, set_name)
    for index, sample in enumerate(samples, 1):
        raw = upscaler.output(set_name, sample)
        ref = reference_image(args.reference, set_name, sample, restorer)
        guidance = readers.rapid(ref)
        entry = {"id": sample.id}
        if not args.raw_only:  # Keep Words first: its own first reading of the raw image is then reused below
            raw_t, ref_t = to_tensor(raw), to_tensor(ref)
            start = time.perf_counter()
            result = keep(raw_t, ref_t, guidance, reader=readers.guard_reader(), mode=args.mode,
                          dilation=args.dilation)
            seconds = time.perf_counter() - start
            kept = to_pil(result.image)
            if args.save_kept:
                target = args.cache / "kept" / api / args.reference / upscaler.name / set_name / f"{sample.id}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                kept.save(target)
            for ocr in args.ocr:
                row.kept[ocr] = row.kept[ocr] + word_counts(readers.words(ocr, kept), sample.gt)
            changed = result.report.changed_pixels / (raw.width * raw.height)
            row.changed += changed
            row.seconds += seconds
            row.look.add(raw_t, result.image, result.mask.float())
            repaired = [w for w in result.report.words if w.action != "left"]
            row.repaired_words += len(repaired)
            for word in repaired:  # Keep Words names the rung of its repair ladder that was kept in `repair`
                how = getattr(word, "repair", None) or word.action
                row.actions[how] = row.actions.get(how, 0) + 1
            entry.update({"f1_guidance_before": result.report.f1_before, "f1_guidance_after": result.report.f1_after,
                          "changed": changed, "seconds": seconds,
                          "words": [w.to_dict() for w in result.report.words if w.action != "left"]})
            if args.crops and len([c for c in crops if c[0] == upscaler.name]) < args.crops_words:
                for word in repaired:
                    narrow = word.box is not None and (word.box[2] - word.box[0]) * raw.width <= CROP_MAX_WIDTH
                    if narrow and word.final_status == KEPT and word.expected:
                        crops.append((upscaler.name, set_name, sample.id, word.expected, word.box, raw, ref, kept))
                        break
        for ocr in args.ocr:
            row.raw[ocr] = row.raw[ocr] + word_counts(readers.words(ocr, raw), sample.gt)
            row.ref[ocr] = row.ref[ocr] + word_counts(readers.words(ocr, ref), sample.gt)
        row.images += 1
        row.per_image.append(entry)
        if args.verbose:
            print(f"  {upscaler.name} {set_name} {index}/{len(samples)} {entry}", flush=True)
    return row


def f1(counts: WordCounts) -> float:
    return counts.f1


def print_rows(rows: list[Row], args, api: str) -> list[str]:
    lines = []
    for set_name in dict.fromkeys(r.set for r in rows):
        group = [r for r in rows if r.set == set_name]
        what = "raw outputs only" if args.raw_only else "Keep Words"
        lines.append(f"\n{set_name} x{SCALE}, {group[0].images} images, reference {args.reference} "
                     f"(guidance = RapidOCR of the reference), {what}")
        if args.raw_only:
            lines.append(f"{'upscaler':26s} {'OCR':10s} {'raw':>6s} {'ref':>6s}")
        else:
            lines.append(f"{'upscaler':26s} {'OCR':10s} {'raw':>6s} {'ref':>6s} {'kept':>6s} {'kept-raw':>9s} "
                         f"{'kept-ref':>9s} {'changed':>8s} {'seam':>6s} {'sharp':>6s} {'s/img':>6s} repaired words")
        for row in group:
            for i, ocr in enumerate(args.ocr):
                name = row.upscaler if i == 0 else ""
                raw, ref = f1(row.raw[ocr]), f1(row.ref[ocr])
                if args.raw_only:
                    lines.append(f"{name:26s} {ocr:10s} {raw:6.3f} {ref:6.3f}")
                    continue
                kept = f1(row.kept[ocr])
                extra = ""
                if i == 0:
                    actions = ", ".join(f"{k} {v}" for k, v in sorted(row.actions.items()))
                    extra = (f" {100 * row.changed / row.images:7.1f}% {row.look.seam:6.2f} {row.look.sharp:6.2f} "
                             f"{row.seconds / row.images:6.1f} {row.repaired_words} ({actions})")
                lines.append(f"{name:26s} {ocr:10s} {raw:6.3f} {ref:6.3f} {kept:6.3f} {kept - raw:+9.3f} "
                             f"{kept - ref:+9.3f}{extra}")
        if not args.raw_only:
            for row in group:
                for ocr in args.ocr:
                    raw, ref, kept = f1(row.raw[ocr]), f1(row.ref[ocr]), f1(row.kept[ocr])
                    near, gain = kept >= ref - F1_WITHIN, kept >= raw + F1_GAIN
                    lines.append(f"{'PASS' if near and gain else 'FAIL'} {row.upscaler} {set_name} {ocr}: kept {kept:.3f} "
                                 f"{'>=' if near else '<'} ref {ref:.3f} - {F1_WITHIN} [{'ok' if near else 'no'}], "
                                 f"{'>=' if gain else '<'} raw {raw:.3f} + {F1_GAIN} [{'ok' if gain else 'no'}]")
    for line in lines:
        print(line, flush=True)
    return lines


def write_crops(crops: list, path: Path, zoom: int, dilation: int) -> None:
    """Rows of (raw upscaler | reference | kept) around repaired words, nearest-neighbour zoom."""
    font = ImageFont.load_default(size=14)
    tiles = []
    for name, set_name, sample_id, word, box, raw, ref, kept in crops:
        width, height = raw.size
        margin = dilation + 6
        x0, y0 = max(0, int(box[0] * width) - margin), max(0, int(box[1] * height) - margin)
        x1, y1 = min(width, int(math.ceil(box[2] * width)) + margin), min(height, int(math.ceil(box[3] * height)) + margin)
        x1 = min(x1, x0 + CROP_MAX_WIDTH + 2 * margin)
        parts = [im.crop((x0, y0, x1, y1)).resize(((x1 - x0) * zoom, (y1 - y0) * zoom), Image.Resampling.NEAREST)
                 for im in (raw, ref, kept)]
        label = f'{name} | reference | kept   ({set_name} {sample_id}, "{word}")'
        tiles.append((label, parts))
    if not tiles:
        print("no repaired word read right to show: no crops written", flush=True)
        return
    gap, head = 8, 20
    col_w = max(p.width for _, parts in tiles for p in parts)
    total_h = sum(head + max(p.height for p in parts) + gap for _, parts in tiles)
    sheet = Image.new("RGB", (3 * col_w + 4 * gap, total_h + gap), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = gap
    for label, parts in tiles:
        draw.text((gap, y), label, fill=(0, 0, 0), font=font)
        y += head
        for i, part in enumerate(parts):
            sheet.paste(part, (gap + i * (col_w + gap), y))
        y += max(p.height for p in parts) + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    print(f"crops: {path} ({len(tiles)} words, {sheet.width}x{sheet.height})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("upscalers", nargs="+", help="spandrel files, 'textrestore' or dir:PATH")
    parser.add_argument("--set", dest="sets", type=Path, action="append", required=True,
                        help="a make-corpus eval folder (repeat for several)")
    parser.add_argument("--reference", choices=("bicubic", "textrestore"), default="bicubic")
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set")
    parser.add_argument("--ocr", default=",".join(OCRS), help="rapidocr, tesseract or both (comma separated)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--raw-only", action="store_true", help="only raw and reference F1 (no Keep Words)")
    parser.add_argument("--mode", choices=("changed words", "all text", "guidance words"), default="changed words")
    parser.add_argument("--dilation", type=int, default=8)
    parser.add_argument("--crops", type=Path, default=None, help="write side-by-side crops of repaired words here")
    parser.add_argument("--crops-words", type=int, default=3, help="repaired words per upscaler in the crops")
    parser.add_argument("--crops-zoom", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None, help="also write every figure and per-image row")
    parser.add_argument("--save-kept", action="store_true", help="also save kept images under cache/kept/")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--core", type=Path, default=None,
                        help="measure the glyphsr_core of another checkout (default: this one)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.ocr = [o.strip() for o in args.ocr.split(",") if o.strip()]
    if not args.ocr or set(args.ocr) - set(OCRS):
        parser.error(f"--ocr takes {', '.join(OCRS)}")
    if args.cache.resolve().is_relative_to(HERE.parent):
        parser.error("--cache must be outside the repository")
    torch.set_num_threads(args.threads)
    api = "raw" if args.raw_only else "keep_words"
    readers = Readers(args.cache)
    restorer = Upscaler("textrestore", args.cache) if args.reference == "textrestore" else None
    upscalers = [Upscaler(spec, args.cache) for spec in args.upscalers]
    rows, crops = [], []
    for root in args.sets:
        samples = load_set(root, args.limit)
        for upscaler in upscalers:
            start = time.perf_counter()
            rows.append(run_set(upscaler, root, samples, args, readers, restorer, api, crops))
            print(f"[{upscaler.name} on {root.name}: {len(samples)} images in {time.perf_counter() - start:.0f} s]",
                  flush=True)
    import glyphsr_core

    print(f"\nglyphsr_core from {Path(glyphsr_core.__file__).parent}", flush=True)
    lines = print_rows(rows, args, api)
    if args.crops:
        write_crops(crops, args.crops, args.crops_zoom, args.dilation)
    if args.json:
        payload = {"settings": {k: str(v) for k, v in vars(args).items()}, "api": api, "table": lines,
                   "rows": [{"upscaler": r.upscaler, "set": r.set, "images": r.images,
                             **{f"{part}_{o}": getattr(r, part)[o].f1 for part in ("raw", "ref", "kept") for o in args.ocr},
                             "changed": r.changed / max(r.images, 1), "seam": r.look.seam, "sharp": r.look.sharp,
                             "seconds": r.seconds / max(r.images, 1), "actions": r.actions, "per_image": r.per_image}
                            for r in rows]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
