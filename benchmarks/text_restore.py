"""Text Restore: OCR word F1 against bicubic, time and memory, and parity with ComfyUI's upscale path.

    python benchmarks/text_restore.py quality --root data/eval100 [--root data/eval100_realistic] [--ocr tesseract]
    python benchmarks/text_restore.py speed
    python benchmarks/text_restore.py parity        # with COMFYUI_DIR set, run by ComfyUI's Python

Targets (issue "Text Restore"): on the clean-bicubic eval set of docs/text-restore.md x4 F1 >= 0.93, x8 >= 0.40;
x4 of a 512 x 512 image <= 2 s on 2 CPU cores; peak memory bounded by the tile, not the image;
the node within 1.1x of ComfyUI's 'Upscale Image (using Model)' time on the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class TesseractReading:
    """The subset of OcrResult that `evaluate` reads: `.words`."""

    def __init__(self, words: list[str]):
        self.words = tuple(words)


def tesseract_ocr(image, min_confidence: float = 0.5, ocr_scale: str = "auto") -> TesseractReading:
    """An independent reader (Tesseract 5, never used in training): words with confidence >= 50."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        scale = 2 if max(image.size) < 1024 else 1
        (image.resize((image.width * scale, image.height * scale)) if scale > 1 else image).save(handle.name)
        out = subprocess.run(["tesseract", handle.name, "-", "--psm", "11", "tsv"], capture_output=True, text=True,
                             check=True).stdout
    words = []
    for line in out.splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) == 12 and cols[11].strip() and float(cols[10]) >= 100 * min_confidence:
            words.append(cols[11].strip())
    return TesseractReading(words)


def quality(args: argparse.Namespace) -> None:
    from glyphsr_core.commands.evaluate import evaluate

    restorer = "restore" if args.restorer is None else f"restore:{args.restorer}"
    methods = [restorer if m == "restore" else m for m in args.methods.split(",")]
    ocr = tesseract_ocr if args.ocr == "tesseract" else None
    rows = []
    for root in args.root:
        for scale in args.scales:
            report = evaluate("synthetic", Path(root), scale, methods, limit=args.limit, ocr=ocr)
            for name, result in report["methods"].items():
                s = result["summary"]
                rows.append({"set": Path(root).name, "scale": scale, "method": name.split(":")[0], "ocr": args.ocr,
                             "images": s["images"], "f1": s["f1"], "psnr_text": s["psnr_text"], "psnr": s["psnr"],
                             "ssim": s["ssim"]})
                print(f"{Path(root).name:22s} x{scale} {name.split(':')[0]:8s} ocr={args.ocr:9s} "
                      f"F1 {s['f1']:.3f}  PSNRtxt {s['psnr_text']:.2f}  PSNR {s['psnr']:.2f}  SSIM {s['ssim']:.3f}",
                      flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


def _peak_rss_child(side: int, tile: int, path: Path) -> float:
    code = f"""
import resource, sys, torch
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from glyphsr_core.restore import load_restorer, restore
torch.set_num_threads(2)
loaded = load_restorer({str(path)!r})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = restore(loaded.model, loaded.scale, torch.rand(1, 3, {side}, {side}), 4, tile={tile}, context_margin=32)
print(before / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return tuple(float(v) for v in done.stdout.split())  # type: ignore[return-value]


def _restorer_path(args: argparse.Namespace) -> Path:
    from glyphsr_core.restore import BUNDLED_PATH

    return Path(args.restorer) if args.restorer else BUNDLED_PATH


def speed(args: argparse.Namespace) -> None:
    import torch

    from glyphsr_core.restore import load_restorer, restore

    torch.set_num_threads(2)
    path = _restorer_path(args)
    loaded = load_restorer(path)
    print(f"{path.name}: {getattr(loaded.model, 'num_feat', '?')} features, "
          f"{sum(p.numel() for p in loaded.model.parameters()):,} parameters")
    image = torch.rand(1, 3, 512, 512)
    restore(loaded.model, loaded.scale, image[:, :, :64, :64], 4)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        restore(loaded.model, loaded.scale, image, 4, tile=512, context_margin=32)
        times.append(time.perf_counter() - start)
    print(f"x4 of 512x512 -> 2048x2048: median {statistics.median(times):.2f} s over {args.repeats} runs (target <= 2 s)")
    for side in (512, 1024, 2048):
        base, peak = _peak_rss_child(side, 512, path)
        print(f"input {side}x{side} (tile 512): peak RSS {peak:.0f} MB (after loading {base:.0f} MB; "
              f"the {side * 4}^2 output alone is {3 * 4 * (side * 4) ** 2 / 2**20:.0f} MB)")


def parity(args: argparse.Namespace) -> None:
    """Our tiled run vs ComfyUI's ImageUpscaleWithModel path (spandrel + comfy.utils.tiled_scale)."""
    comfy_dir = os.environ.get("COMFYUI_DIR")
    if not comfy_dir:
        sys.exit("set COMFYUI_DIR (and run with ComfyUI's Python)")
    sys.path.insert(0, comfy_dir)
    import torch
    import comfy.utils
    from spandrel import ModelLoader

    from glyphsr_core.restore import load_restorer, restore

    torch.set_num_threads(2)
    path = _restorer_path(args)
    ours = load_restorer(path)
    core = ModelLoader().load_from_file(str(path)).model.eval()
    image = torch.rand(1, 3, 512, 512)
    timings: dict[str, list[float]] = {"ours": [], "comfyui": []}
    outs = {}
    for _ in range(args.repeats):
        start = time.perf_counter()
        outs["ours"] = restore(ours.model, ours.scale, image, 4, tile=512, context_margin=32)
        timings["ours"].append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.no_grad():
            outs["comfyui"] = torch.clamp(comfy.utils.tiled_scale(image, lambda a: core(a), tile_x=512, tile_y=512,
                                                                  overlap=32, upscale_amount=4), 0, 1)
        timings["comfyui"].append(time.perf_counter() - start)
    a, b = (statistics.median(timings[k]) for k in ("ours", "comfyui"))
    diff = (outs["ours"] - outs["comfyui"]).abs().max().item()
    print(f"512x512 x4: ours {a:.2f} s, ComfyUI's path {b:.2f} s, ratio {a / b:.2f} (target <= 1.1); "
          f"max pixel difference {diff * 255:.3f} / 255")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--root", action="append", required=True, help="a make-corpus folder (repeatable)")
    q.add_argument("--scales", type=lambda s: [int(x) for x in s.split(",")], default=[4, 8])
    q.add_argument("--restorer", default=None, help="restorer file (default: the bundled one)")
    q.add_argument("--methods", default="bicubic,lanczos,restore",
                   help="comma-separated evaluate methods ('restore' is --restorer)")
    q.add_argument("--ocr", choices=("rapidocr", "tesseract"), default="rapidocr")
    q.add_argument("--limit", type=int, default=None)
    q.add_argument("--json", default=None)
    for name in ("speed", "parity"):
        p = sub.add_parser(name)
        p.add_argument("--repeats", type=int, default=3)
        p.add_argument("--restorer", default=None, help="restorer file (default: the bundled one)")
    args = parser.parse_args()
    {"quality": quality, "speed": speed, "parity": parity}[args.what](args)


if __name__ == "__main__":
    main()
