"""Training throughput and peak memory of the text-branch trainer.

Default: the tiny config on this machine's CPU (random tiny SD1.5 models, 16-sample corpus at 64 px),
with gradient checkpointing off and on, each in a fresh process so peak memory is its own:

    python benchmarks/train_tiny.py                      # tiny sd15, CPU
    python benchmarks/train_tiny.py --family sdxl
    python benchmarks/train_tiny.py --size full --family sd15 --resolution 512 --batch 1 --mixed-precision fp16
        # random full-size SD1.5 models: run this on a GPU to measure real training memory

Prints samples/s (whole run, first step included) and peak memory (CUDA: max allocated; CPU: max RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    import torch

    from glyphsr_core.diffusion.models import controlnet_from_state_dict, controlnet_state_dict
    from glyphsr_core.diffusion.tiny import (FULL_SIZE_CONDITIONING_CHANNELS, build_full_size_random_base,
                                             build_tiny_base, build_tiny_controlnet)
    from glyphsr_core.training.text_branch_config import config_from_dict
    from glyphsr_core.training.text_branch import Models, train
    from glyphsr_core.tscontrolnet import init_text_from_scene

    if args.size == "full":
        base = build_full_size_random_base(args.family)
        scene = build_tiny_controlnet(base.unet, embedding_channels=FULL_SIZE_CONDITIONING_CHANNELS)
    else:
        base = build_tiny_base(args.family)
        scene = build_tiny_controlnet(base.unet)
    text = controlnet_from_state_dict(init_text_from_scene(controlnet_state_dict(scene)), base.unet)
    models = Models(base=base, scene=scene.requires_grad_(False), text=text.requires_grad_(True).train())
    config = config_from_dict({
        "model": {"tiny": args.family},  # unused: the models are given
        "data": {"corpus": args.corpus, "scales": [4], "resolution": args.resolution, "validation_samples": 1,
                 "num_workers": 0},
        "train": {"output_dir": args.out, "max_steps": args.steps, "batch_size": args.batch, "learning_rate": 1e-5,
                  "lr_scheduler": "constant", "lr_warmup_steps": 0, "checkpointing_steps": 10**6,
                  "save_bundle_steps": 10**6, "log_every": 10**6, "gradient_checkpointing": args.gradient_checkpointing,
                  "mixed_precision": args.mixed_precision},
        "validation": {"every": 0},
    })
    started = time.perf_counter()
    result = train(config, models=models)
    total = time.perf_counter() - started
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(json.dumps({"family": args.family, "size": args.size, "device": device, "resolution": args.resolution,
                      "batch": args.batch, "gradient_checkpointing": args.gradient_checkpointing,
                      "mixed_precision": args.mixed_precision, "steps": result.step,
                      "samples_per_s": round(result.samples_per_second, 3), "seconds": round(total, 1),
                      "peak_memory_mb": round(result.peak_memory_mb, 1),
                      "trainable_params_m": round(sum(p.numel() for p in text.parameters()) / 1e6, 1)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("sd15", "sdxl"), default="sd15")
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="only this setting (default: off, then on)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory(prefix="glyphsr_train_bench_") as tmp:
        corpus = Path(tmp) / "corpus"
        subprocess.run([sys.executable, "-m", "glyphsr_core", "make-corpus", "--out", str(corpus), "--n", "16",
                        "--size", str(max(128, args.resolution)), "--scales", "4", "--no-system-fonts",
                        "--workers", "1"], check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
        settings = [True] if args.gradient_checkpointing else [False, True]
        for checkpointing in settings:
            command = [sys.executable, __file__, "--child", "--corpus", str(corpus), "--out", str(Path(tmp) / "run"),
                       "--family", args.family, "--size", args.size, "--steps", str(args.steps),
                       "--batch", str(args.batch), "--resolution", str(args.resolution),
                       "--mixed-precision", args.mixed_precision]
            if checkpointing:
                command.append("--gradient-checkpointing")
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith('{"family"')]
            if done.returncode or not lines:
                print(done.stderr[-3000:], file=sys.stderr)
                return done.returncode or 1
            print(lines[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
