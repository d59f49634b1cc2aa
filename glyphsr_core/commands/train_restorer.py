"""`train-restorer`: train the Text Restore network from a YAML config (configs/restore_x4.yaml)."""

from __future__ import annotations

import argparse
import json
import time

from ..errors import InvalidInputError
from ..training.restorer_config import load_restorer_config


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="training config (.yaml), e.g. configs/restore_x4.yaml")
    parser.add_argument("--resume", action="store_true", help="continue from <output>/state.pt if it exists")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="save the state and stop after this many minutes (resume later with --resume)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads; 1 is often fastest on a busy 2-core machine (default: torch's choice)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a top-level config value, e.g. --set iterations=100 (repeatable)")


def _overrides(items: list[str]) -> dict[str, object]:
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    from ..training.restorer import train_restorer

    config = load_restorer_config(args.config, _overrides(args.set))
    if args.threads is not None:
        import torch

        if args.threads < 1:
            raise InvalidInputError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm comes with transformers; plain lines otherwise
        tqdm = None
    bar = tqdm(total=config.iterations, unit="step", dynamic_ncols=True) if tqdm else None
    last = {"t": time.monotonic()}

    def progress(step: int, total: int, terms: dict[str, float]) -> None:
        if bar is not None:
            bar.n = step
            bar.set_postfix({k: f"{v:.4f}" for k, v in terms.items()}, refresh=False)
            bar.update(0)
        elif time.monotonic() - last["t"] > 30:
            last["t"] = time.monotonic()
            print(f"step {step}/{total} " + " ".join(f"{k}={v:.4f}" for k, v in terms.items()), flush=True)

    result = train_restorer(config, resume=args.resume, max_minutes=args.max_minutes, progress=progress)
    if bar is not None:
        bar.close()
    print(json.dumps({"step": result.step, "weights": str(result.weights) if result.weights else None,
                      "validation": result.validation, "minutes": round(result.seconds / 60, 1)}, indent=2))
    return 0
