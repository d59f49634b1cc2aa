"""Ping-pong KSampler time / ComfyUI KSampler time at equal steps (target <= 1.02).

Runs inside ComfyUI's interpreter, in one process: both samplers use the same checkpoint, latent
size, seed, sampler and steps; runs alternate and the median of each is compared. It also counts
UNet calls per run (a UNet function wrapper), to show that ping-pong adds no model evaluations.

    COMFYUI_DIR=/path/to/ComfyUI /path/to/comfy/python benchmarks/pingpong_overhead.py \
        [--ckpt file.safetensors] [--size 512] [--steps 20] [--runs 5] [--cpu]

Without --ckpt it builds the tiny SD1.5 checkpoint of tests/integration/tiny_models.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", type=Path, help="SD checkpoint (default: build the tiny SD1.5 test checkpoint)")
    parser.add_argument("--size", type=int, default=512, help="image size in pixels (latent = size / 8)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each sampler (after one warm-up)")
    parser.add_argument("--sampler", default="euler")
    parser.add_argument("--scheduler", default="normal")
    parser.add_argument("--cpu", action="store_true", help="run ComfyUI on the CPU")
    return parser.parse_args()


def comfyui_dir() -> Path:
    value = os.environ.get("COMFYUI_DIR")
    if not value or not (Path(value) / "main.py").is_file():
        sys.exit("set COMFYUI_DIR to a ComfyUI checkout and run this with ComfyUI's python")
    return Path(value).resolve()


def load_pack():
    spec = importlib.util.spec_from_file_location("glyphsr_pack", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    pack = importlib.util.module_from_spec(spec)
    sys.modules["glyphsr_pack"] = pack
    spec.loader.exec_module(pack)
    return pack


def main() -> int:
    args = parse_args()
    root = comfyui_dir()
    sys.path.insert(0, str(root))
    os.chdir(root)
    import comfy.cli_args

    comfy.cli_args.args.cpu = args.cpu or comfy.cli_args.args.cpu
    import torch

    import comfy.model_management
    import comfy.sd
    import nodes as comfy_nodes

    ckpt = args.ckpt
    if ckpt is None:
        sys.path.insert(0, str(REPO / "tests" / "integration"))
        import tiny_models

        ckpt = tiny_models.ensure_model("sd15", root)
    model, clip, _vae, _ = comfy.sd.load_checkpoint_guess_config(str(ckpt), output_vae=False, output_clipvision=False)

    calls = {"n": 0}

    def counting_wrapper(apply_model, a):
        calls["n"] += 1
        return apply_model(a["input"], a["timestep"], **a["c"])

    model = model.clone()
    model.set_model_unet_function_wrapper(counting_wrapper)

    encode = comfy_nodes.CLIPTextEncode().encode
    scene_pos, scene_neg = encode(clip, "a brick shop front at dusk")[0], encode(clip, "blurry, low quality")[0]
    text_pos, text_neg = encode(clip, "the word OPEN in red letters")[0], encode(clip, "misspelled text")[0]
    latent = {"samples": torch.zeros(1, 4, args.size // 8, args.size // 8)}
    pingpong = load_pack().nodes.pingpong.PingPongKSampler()

    def builtin():
        return comfy_nodes.common_ksampler(model, 1, args.steps, 7.0, args.sampler, args.scheduler, scene_pos,
                                           scene_neg, latent)[0]

    def pp():
        return pingpong.sample(model, 1, args.steps, 7.0, args.sampler, args.scheduler, scene_pos, scene_neg, latent,
                               1.0, 7.0, "alternate", 0.9, "ST", text_positive=text_pos, text_negative=text_neg,
                               cfg_start=0.0)[0]

    def timed(fn):
        calls["n"] = 0
        sync = torch.cuda.synchronize if torch.cuda.is_available() and not args.cpu else (lambda: None)
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        sync()
        return time.perf_counter() - start, time.process_time() - cpu_start, calls["n"]

    timed(builtin), timed(pp)  # warm-up: model loading, allocator, kernels
    times = {"ksampler": [], "pingpong": []}
    cpu_times = {"ksampler": [], "pingpong": []}
    evals = {}
    for _ in range(args.runs):  # interleaved, so load drifts hit both alike
        for name, fn in (("ksampler", builtin), ("pingpong", pp)):
            seconds, cpu_seconds, n = timed(fn)
            times[name].append(seconds)
            cpu_times[name].append(cpu_seconds)
            evals[name] = n
    med = {name: statistics.median(values) for name, values in times.items()}
    pair_ratio = statistics.median(p / k for p, k in zip(times["pingpong"], times["ksampler"]))
    cpu_ratio = statistics.median(cpu_times["pingpong"]) / statistics.median(cpu_times["ksampler"])
    device = comfy.model_management.get_torch_device()
    print(f"device {device}; checkpoint {Path(ckpt).name}; {args.size}px; {args.steps} steps {args.sampler}/"
          f"{args.scheduler}; {args.runs} runs each")
    for name in ("ksampler", "pingpong"):
        print(f"{name:9s} median {med[name]:.4f} s  (runs: {', '.join(f'{t:.4f}' for t in times[name])}); "
              f"UNet calls per run: {evals[name]}")
    plan = sys.modules["glyphsr_pack.glyphsr_core.sampling.pingpong"].PingPong()
    grid = [float(x) for x in torch.linspace(14.6, 0.03, args.steps).tolist()] + [0.0]
    sigma = torch.tensor([grid[args.steps // 2]])
    reps = 20000
    start = time.perf_counter()
    for _ in range(reps):
        plan.choose(sigma, grid)
    choose_us = (time.perf_counter() - start) / reps * 1e6
    unet_s = med["ksampler"] / max(1, evals["ksampler"])
    print(f"ping-pong decision per model evaluation: {choose_us:.1f} us = {choose_us * 1e-6 / unet_s:.2e} of a "
          f"model evaluation here ({unet_s:.4f} s)")
    print(f"ratio pingpong/ksampler: {med['pingpong'] / med['ksampler']:.4f} (target <= 1.02); "
          f"median of back-to-back pair ratios {pair_ratio:.4f}; process-CPU-time ratio {cpu_ratio:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
