"""`train`: train the TS-ControlNet text branch from a YAML/TOML config (see configs/)."""

from __future__ import annotations

import argparse
import json

from ..training.text_branch_config import load_config


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config (.yaml / .toml), e.g. configs/train_sdxl.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set train.max_steps=100 (repeatable)")
    parser.add_argument("--resume", default=None, metavar="CHECKPOINT|latest",
                        help="resume from a checkpoint folder or the latest one in the output folder")


def run(args: argparse.Namespace) -> int:
    from ..training.text_branch import train

    overrides = list(args.set)
    if args.resume:
        overrides.append(f"train.resume_from_checkpoint={args.resume}")
    config = load_config(args.config, overrides)
    result = train(config)
    summary = {"step": result.step, "final_loss": result.losses[-1] if result.losses else None,
               "samples_per_s": round(result.samples_per_second, 3), "peak_memory_mb": round(result.peak_memory_mb, 1),
               "bundles": {k: str(v) for k, v in result.bundles.items()},
               "validation_f1": [r["f1"] for r in result.validation]}
    print(json.dumps(summary, indent=2))
    return 0
