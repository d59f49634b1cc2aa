"""Upscale every image of a folder with any upscaler file spandrel loads (or the bundled Text Restore).

    python benchmarks/upscale_dir.py MODEL.safetensors LQ_DIR OUT_DIR [--limit N] [--threads 2] [--reverse]
    python benchmarks/upscale_dir.py textrestore LQ_DIR OUT_DIR     # the pack's Text Restore (glyphsr_core.restore)

For scoring upscalers that are not built in: `make-lq` (or a corpus's `lq_x4/`) -> this -> `evaluate
--method dir:OUT_DIR`. Images already in OUT_DIR are skipped, so a stopped run resumes. Outputs are
PNG (uint8), named like the inputs, at the model's own scale; the model runs on the whole image
(no tiles: meant for the README's 128 px LQ images). Needs spandrel (and torchvision) for files
other than the bundled restorer.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def load_upscaler(spec: str):
    """(callable [1,3,h,w] 0..1 -> [1,3,H,W] 0..1, name) for a spandrel file or 'textrestore'."""
    if spec == "textrestore":
        from glyphsr_core.restore import load_restorer, restore

        loaded = load_restorer(Path(__file__).resolve().parent.parent / "models" / "upscale_models"
                               / "glyphsr_text_restore_x4.safetensors")
        return (lambda x: restore(loaded.model, loaded.scale, x, 4)), "textrestore"
    from spandrel import ModelLoader

    descriptor = ModelLoader().load_from_file(spec)
    descriptor.model.eval()
    return (lambda x: descriptor.model(x)), Path(spec).stem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a .safetensors/.pth file spandrel loads, or 'textrestore'")
    parser.add_argument("lq", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by name)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reverse", action="store_true", help="last image first (to share a folder with a run going forward)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    files = sorted(p for p in args.lq.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:args.limit]
    if not files:
        parser.error(f"no images in {args.lq}")
    if args.reverse:
        files.reverse()
    run, name = load_upscaler(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    done, seconds = 0, 0.0
    for path in files:
        target = args.out / f"{path.stem}.png"
        if target.exists():
            continue
        with Image.open(path) as opened:
            array = np.asarray(opened.convert("RGB"), np.float32) / 255
        start = time.perf_counter()
        with torch.inference_mode():
            out = run(torch.from_numpy(array).permute(2, 0, 1)[None])
        seconds += time.perf_counter() - start
        out = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(out).save(target)
        done += 1
        print(f"{name} {path.stem} {out.shape[1]}x{out.shape[0]} {seconds / done:.2f} s/image", flush=True)
    print(f"{name}: {done} new image(s) in {args.out}, {seconds / max(done, 1):.2f} s/image", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
