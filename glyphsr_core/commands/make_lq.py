"""`make-lq`: write a dataset's LQ inputs (`<id>.png`) so another tool can upscale them for `evaluate`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.datasets import ImageDecodeError, load_dataset, lq_for
from ..data.degrade import DegradationError, check_scale


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=("synthetic", "svt", "ctw1500", "cute80"))
    parser.add_argument("--root", type=Path, required=True, help="dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for <id>.png LQ images and lq_params.jsonl")
    parser.add_argument("--scale", type=int, default=4, help="downscale factor: 2, 4 or 8")
    parser.add_argument("--split", default="test", help="SVT annotation file to read (test or train)")
    parser.add_argument("--degradation", default="bicubic", choices=("bicubic", "realistic", "paper"),
                        help="bicubic: plain downscale; realistic / paper: blur, noise, JPEG (seeded)")
    parser.add_argument("--seed", type=int, default=0, help="degradation seed (realistic/paper)")
    parser.add_argument("--limit", type=int, default=None, help="write only the first N images")


def run(args: argparse.Namespace) -> int:
    scale = check_scale(args.scale)
    dataset = load_dataset(args.dataset, args.root, args.split)
    samples = dataset.samples[: args.limit] if args.limit else dataset.samples
    args.out.mkdir(parents=True, exist_ok=True)
    skipped = {k: list(v) for k, v in dataset.skipped.items()}
    written = 0
    with (args.out / "lq_params.jsonl").open("w", encoding="utf-8") as handle:
        for sample in samples:
            try:
                cropped, lq, params = lq_for(sample, sample.load_image(), scale, args.degradation, args.seed)
            except (ImageDecodeError, FileNotFoundError, DegradationError) as exc:
                skipped.setdefault("unusable image", []).append(f"{sample.id}: {exc}")
                continue
            lq.save(args.out / f"{sample.id}.png")
            handle.write(json.dumps({"id": sample.id, "hq_size": list(cropped.size), "lq_size": list(lq.size),
                                     "degradation": params or "stored in the corpus"}) + "\n")
            written += 1
    print(f"wrote {written} LQ images (x{scale}) to {args.out}; upscale them to {scale}x and evaluate with "
          f"--method dir:<folder>")
    for reason, items in skipped.items():
        print(f"skipped {len(items)} ({reason}), e.g. {items[0]}")
    return 0 if written else 2
