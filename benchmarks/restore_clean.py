"""Text Restore files side by side: frame, grid, x4 time, and word F1 against bicubic.

    python benchmarks/restore_clean.py looks --restorer OLD.safetensors --restorer NEW.safetensors [--image photo.jpg]
    python benchmarks/restore_clean.py quality --root data/eval100 --root data/eval100_realistic \
        --restorer OLD --restorer NEW [--scales 4,8] [--ocr rapidocr,tesseract] [--limit N]

`looks` prints, per file, on synthetic flat / gradient / blob images (and on `--image` files):
* frame: the largest |mean of the outermost 2 output rows or columns - bicubic's| over the 4 edges, in
  8-bit levels, as the node runs the file (edge-replicated borders) and raw (zero padding, as ComfyUI's
  own *Upscale Image (using Model)* runs it);
* grid: the spread over the 16 phases (y % 4, x % 4) of the mean high-pass value away from the edges,
  in levels, beside bicubic's own;
* x4 of a 512 x 512 image: median seconds over 3 runs, 2 torch threads (target <= 2 s).
`quality` restores each set once per file and reads the results with each OCR (word F1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glyphsr_core.restore import BUNDLED_PATH, load_restorer, restore  # noqa: E402
from glyphsr_core.restore.defects import frame_measure, grid_measure  # noqa: E402
from glyphsr_core.restore.run import resize_bchw  # noqa: E402


def synthetic(size: int = 64) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    gradient = torch.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.7 - 0.3 * xx * yy])[None]
    return {"flat blue": torch.tensor([40 / 255, 90 / 255, 160 / 255]).view(1, 3, 1, 1).expand(1, 3, size, size).clone(),
            "gradient": gradient,
            "blobs": F.interpolate(torch.rand(1, 3, 5, 5, generator=g), size=(size, size), mode="bicubic",
                                   align_corners=True).clamp(0.05, 0.95),
            "noisy gradient": (gradient + 0.01 * torch.randn(1, 3, size, size, generator=g)).clamp(0, 1)}


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


def looks(args: argparse.Namespace) -> None:
    torch.set_num_threads(2)
    images = synthetic()
    for path in args.image:
        photo = Image.open(path).convert("RGB")
        photo.thumbnail((160, 160), Image.Resampling.LANCZOS)
        images[Path(path).name] = _tensor(photo)
    files = [Path(p) for p in args.restorer] or [BUNDLED_PATH]
    loaded = {path: load_restorer(path) for path in files}
    print(f"{'image':16s} {'file':40s} {'frame':>7s} {'raw frame':>9s} {'grid':>6s} {'bicubic grid':>12s}")
    for name, image in images.items():
        bicubic = resize_bchw(image, (image.shape[2] * 4, image.shape[3] * 4), Image.Resampling.BICUBIC)
        for path, net in loaded.items():
            out = restore(net.model, net.scale, image, 4)
            raw = restore(net.model, net.scale, image, 4, border=0)
            print(f"{name:16s} {path.name:40s} {frame_measure(out, bicubic):7.2f} {frame_measure(raw, bicubic):9.2f} "
                  f"{grid_measure(out, 4):6.2f} {grid_measure(bicubic, 4):12.2f}", flush=True)
    image = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    for path, net in loaded.items():
        params = sum(p.numel() for p in net.model.parameters())
        restore(net.model, net.scale, image[:, :, :64, :64], 4)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            restore(net.model, net.scale, image, 4, tile=512, context_margin=32)
            times.append(time.perf_counter() - start)
        print(f"{path.name}: {getattr(net.model, 'num_feat', '?')} features, {params:,} parameters, "
              f"{path.stat().st_size / 2**20:.1f} MiB; x4 of 512x512: median {statistics.median(times):.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in times)})", flush=True)


def quality(args: argparse.Namespace) -> None:
    from glyphsr_core.data.corpus import load_corpus
    from glyphsr_core.text.metrics import WordCounts, word_counts

    readers = {}
    for name in args.ocr.split(","):
        if name == "rapidocr":
            from glyphsr_core.ocr import read_text

            readers[name] = lambda image: list(read_text(image).words)
        elif name == "tesseract":
            from text_restore import tesseract_ocr

            readers[name] = lambda image: list(tesseract_ocr(image).words)
        else:
            raise SystemExit(f"unknown OCR {name!r}: rapidocr or tesseract")
    torch.set_num_threads(args.threads)
    files = [Path(p) for p in args.restorer]
    nets = {f"{i}:{path.name}": load_restorer(path) for i, path in enumerate(files)}
    for root in args.root:
        samples = load_corpus(Path(root))[: args.limit]
        for scale in args.scales:
            methods = [*([] if args.no_bicubic else ["bicubic"]), *nets]
            counts = {(m, o): WordCounts() for m in methods for o in readers}
            for sample in samples:
                truth = [w.text for w in sample.words]
                lq = Image.open(sample.lq_paths[scale]).convert("RGB")
                hq_size = Image.open(sample.hq_path).size
                outputs = {} if args.no_bicubic else {"bicubic": lq.resize(hq_size, Image.Resampling.BICUBIC)}
                for key, net in nets.items():
                    out = restore(net.model, net.scale, _tensor(lq), scale, tile=1024, context_margin=32)[0]
                    outputs[key] = Image.fromarray(np.round(out.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
                for method, image in outputs.items():
                    for ocr, read in readers.items():
                        counts[method, ocr] = counts[method, ocr] + word_counts(read(image), truth)
            for (method, ocr), total in counts.items():
                print(f"{Path(root).name:20s} x{scale} {ocr:9s} {method:48s} F1 {total.f1:.3f} "
                      f"({len(samples)} images)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("looks")
    p.add_argument("--restorer", action="append", default=[])
    p.add_argument("--image", action="append", default=[], help="a photo (shrunk to 160 px) to measure too")
    p.set_defaults(run=looks)
    q = sub.add_parser("quality")
    q.add_argument("--root", action="append", required=True)
    q.add_argument("--restorer", action="append", required=True)
    q.add_argument("--scales", type=lambda s: [int(v) for v in s.split(",")], default=[4])
    q.add_argument("--ocr", default="rapidocr,tesseract")
    q.add_argument("--limit", type=int, default=None)
    q.add_argument("--threads", type=int, default=2)
    q.add_argument("--no-bicubic", action="store_true", help="leave out the bicubic baseline (measured in another run)")
    q.set_defaults(run=quality)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
