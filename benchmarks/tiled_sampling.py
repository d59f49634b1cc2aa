"""Tiled ping-pong sampling: memory and time per tile-step vs. the image size (figures, no assertions).

For each output size it runs, in a fresh ComfyUI-library process, the GlyphSR Tiled Ping-Pong KSampler
(tiny SD1.5 checkpoint unless --ckpt) on an empty latent of that size, and the untiled Ping-Pong
KSampler on one tile's latent, and prints:
- the resident memory added while sampling (peak RSS during sampling minus RSS just before it; the
  latent, noise and output tensors are counted in it, so the latent itself is reported beside it);
- seconds per tile-step (tiled time / (steps x tiles)) against seconds per untiled step of one tile.

    COMFYUI_DIR=/path/to/ComfyUI /path/to/comfy/python benchmarks/tiled_sampling.py \
        [--sizes 1024 2048 4096] [--tile 512] [--overlap 64] [--batch 1] [--steps 2] [--ckpt file]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048], help="output sizes in pixels (square)")
    parser.add_argument("--tile", type=int, default=512, help="tile size in pixels")
    parser.add_argument("--overlap", type=int, default=64, help="tile overlap in pixels")
    parser.add_argument("--batch", type=int, default=1, help="tiles per model call")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--ckpt", type=Path, help="SD checkpoint (default: the tiny SD1.5 test checkpoint)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak resident memory while the block runs, sampled every 5 ms in a thread."""

    def __enter__(self):
        self.before = rss_bytes()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def child(args: argparse.Namespace) -> dict:
    root = Path(os.environ["COMFYUI_DIR"]).resolve()
    sys.path.insert(0, str(root))
    os.chdir(root)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import importlib.util

    import torch

    import comfy.sd
    import nodes as comfy_nodes

    ckpt = args.ckpt
    if ckpt is None:
        sys.path.insert(0, str(REPO / "tests" / "integration"))
        import tiny_models

        ckpt = tiny_models.ensure_model("sd15", root)
    model, clip, _vae, _ = comfy.sd.load_checkpoint_guess_config(str(ckpt), output_vae=False, output_clipvision=False)
    spec = importlib.util.spec_from_file_location("glyphsr_pack", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    pack = importlib.util.module_from_spec(spec)
    sys.modules["glyphsr_pack"] = pack
    spec.loader.exec_module(pack)
    tiled, pingpong = pack.nodes.tiled_pingpong, pack.nodes.pingpong
    encode = comfy_nodes.CLIPTextEncode().encode
    conds = [encode(clip, text)[0] for text in ("a street", "blurry", 'the text "OPEN"', "garbled")]
    common = dict(cfg_start=0.0, text_positive=conds[2], text_negative=conds[3])

    def run_tiled(size):
        latent = {"samples": torch.zeros(1, 4, size // 8, size // 8)}
        return tiled.TiledPingPongKSampler().sample(model, 1, args.steps, 5.0, "euler", "normal", conds[0], conds[1],
                                                    latent, 1.0, 5.0, "alternate", 0.9, "ST", args.tile,
                                                    args.overlap, args.batch, **common)

    def run_untiled(size):
        latent = {"samples": torch.zeros(1, 4, size // 8, size // 8)}
        return pingpong.PingPongKSampler().sample(model, 1, args.steps, 5.0, "euler", "normal", conds[0], conds[1],
                                                  latent, 1.0, 5.0, "alternate", 0.9, "ST", **common)

    size = args.child
    run_untiled(args.tile)  # warm-up: weights loaded, allocator and kernels ready
    start = time.perf_counter()
    run_untiled(args.tile)
    untiled_step = (time.perf_counter() - start) / args.steps
    with torch.inference_mode(), PeakRSS() as rss:
        start = time.perf_counter()
        run_tiled(size)
        seconds = time.perf_counter() - start
    grid = tiled.grid_for(size // 8, size // 8, args.tile // 8, args.overlap // 8)
    return {"size": size, "tiles": len(grid), "grid": list(grid.shape), "seconds": seconds,
            "tile_step_s": seconds / (args.steps * len(grid)), "untiled_tile_step_s": untiled_step,
            "rss_added_mib": (rss.peak - rss.before) / 2**20, "latent_mib": 4 * 4 * (size // 8) ** 2 / 2**20}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args)))
        return 0
    if not os.environ.get("COMFYUI_DIR"):
        sys.exit("set COMFYUI_DIR to a ComfyUI checkout and run this with ComfyUI's python")
    rows = []
    print(f"tile {args.tile} px, overlap {args.overlap} px, {args.batch} tile(s) per call, {args.steps} steps, CPU",
          flush=True)
    for size in args.sizes:  # one fresh process per size, so each peak is its own
        cmd = [sys.executable, __file__, "--child", str(size), "--tile", str(args.tile), "--overlap",
               str(args.overlap), "--batch", str(args.batch), "--steps", str(args.steps)]
        if args.ckpt is not None:
            cmd += ["--ckpt", str(args.ckpt)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{r['size']:5d} px: {r['grid'][0]}x{r['grid'][1]} tiles; RSS added while sampling "
              f"{r['rss_added_mib']:.1f} MiB (latent {r['latent_mib']:.1f} MiB); {r['tile_step_s']:.3f} s per "
              f"tile-step vs {r['untiled_tile_step_s']:.3f} s per untiled step of one tile "
              f"({r['tile_step_s'] / r['untiled_tile_step_s']:.2f}x)", flush=True)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"RSS growth {first['size']} -> {last['size']} px, latent aside: "
              f"{(last['rss_added_mib'] - last['latent_mib']) / max(1e-6, first['rss_added_mib'] - first['latent_mib']):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
