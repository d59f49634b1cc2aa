"""Cost of TS-ControlNet vs one plain ControlNet: time per sampling step and peak memory.

Runs inside ComfyUI (its model loading, sampler and ControlNet code), one process, same model,
size, sampler and seed for every configuration:

    none   UNet only (for reference)
    plain  UNet + one ControlNet (ComfyUI's ControlNet, attached like Apply ControlNet)
    ts     UNet + TS-ControlNet (scene + text branches, residuals blended; the UNet runs once per step)

Target: ts / plain <= 1.6 per step (the authors' fusion runs the whole UNet twice per step).
Weights are random (full SD1.5 sizes by default), so only the timings and memory mean anything.

    COMFYUI_DIR=/path/to/ComfyUI /path/to/comfy/python benchmarks/ts_controlnet_cost.py --size 256 --steps 4

Peak memory: CUDA peak allocated per configuration on a GPU. On CPU (weights never move there) the
peak resident set size while a configuration sampled, above the process's size once every model was
built (polled every 10 ms), plus the ControlNet weights ComfyUI loads for it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

SD15_UNET = {
    "use_checkpoint": False, "image_size": 32, "use_spatial_transformer": True, "legacy": False,
    "adm_in_channels": None, "in_channels": 4, "out_channels": 4, "model_channels": 320,
    "num_res_blocks": [2, 2, 2, 2], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], "channel_mult": [1, 2, 4, 4],
    "transformer_depth_middle": 1, "use_linear_in_transformer": False, "context_dim": 768, "num_heads": 8,
    "num_head_channels": -1, "use_temporal_resblock": False, "use_temporal_attention": False,
}
#: a small variant (--tiny): same structure, fewer channels/levels; quick smoke run
TINY_UNET = dict(SD15_UNET, num_res_blocks=[1, 1], transformer_depth=[1, 1], transformer_depth_output=[1, 1, 1, 1],
                 channel_mult=[1, 2])


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--comfyui", default=os.environ.get("COMFYUI_DIR"), help="ComfyUI checkout (or $COMFYUI_DIR)")
    p.add_argument("--size", type=int, default=256, help="image size in pixels (latent = size / 8)")
    p.add_argument("--steps", type=int, default=4, help="sampler steps per configuration (first is warm-up)")
    p.add_argument("--repeats", type=int, default=1, help="sample each configuration this many times")
    p.add_argument("--cfg", type=float, default=4.0, help="CFG scale (> 1: cond and uncond share a batch)")
    p.add_argument("--tiny", action="store_true", help="small UNet instead of full SD1.5 sizes")
    p.add_argument("--cpu", action="store_true", help="force CPU even when a GPU is present")
    return p.parse_args()


def setup_comfy(args):
    if not args.comfyui or not (Path(args.comfyui) / "comfy").is_dir():
        sys.exit("set --comfyui or COMFYUI_DIR to a ComfyUI checkout")
    sys.path.insert(0, str(Path(args.comfyui).resolve()))
    import comfy.options
    comfy.options.enable_args_parsing(False)
    import comfy.cli_args
    import torch
    if args.cpu or not torch.cuda.is_available():
        comfy.cli_args.args.cpu = True


def load_pack():
    spec = importlib.util.spec_from_file_location("glyphsr_pack", REPO_ROOT / "__init__.py",
                                                  submodule_search_locations=[str(REPO_ROOT)])
    pack = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = pack
    spec.loader.exec_module(pack)
    return pack


def random_state_dict(module, seed: int) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * 0.02 for k, v in module.state_dict().items()}


class PeakRSS:
    """Peak resident set size while active (psutil, polled every 10 ms)."""

    def __init__(self, baseline: int = 0):
        import psutil
        self.process = psutil.Process()
        self.peak = baseline
        self._stop = threading.Event()

    @staticmethod
    def current() -> int:
        import psutil
        return psutil.Process().memory_info().rss

    def __enter__(self):
        self.peak = max(self.peak, self.process.memory_info().rss)
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def main() -> int:
    args = parse_args()
    setup_comfy(args)
    import torch
    import comfy.cldm.cldm
    import comfy.controlnet
    import comfy.model_management as mm
    import comfy.ops
    import comfy.sample
    import comfy.sd
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    load_pack()
    from glyphsr_pack.glyphsr_core.tscontrolnet import TSBundle
    from glyphsr_pack.nodes.ts_control_base import build_ts_controlnet

    config = TINY_UNET if args.tiny else SD15_UNET
    ops = comfy.ops.disable_weight_init
    unet = UNetModel(**config, dtype=torch.float32, device="meta", operations=ops)
    model = comfy.sd.load_diffusion_model_state_dict(random_state_dict(unet, 0))
    del unet
    cn_config = {k: v for k, v in config.items() if k != "out_channels"}
    cn = comfy.cldm.cldm.ControlNet(**cn_config, hint_channels=3, dtype=torch.float32, device="meta", operations=ops)
    scene_sd, text_sd = random_state_dict(cn, 1), random_state_dict(cn, 2)
    del cn
    plain = comfy.controlnet.load_controlnet_state_dict(dict(scene_sd))
    ts = build_ts_controlnet(TSBundle(scene_sd, text_sd, beta=0.5, base="sd15"))
    del scene_sd, text_sd

    device = mm.get_torch_device()
    latent = torch.zeros(1, 4, args.size // 8, args.size // 8)
    hint = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(4)
    cond = torch.randn(1, 77, 768, generator=g)
    uncond = torch.randn(1, 77, 768, generator=g)

    def conds(control):
        if control is None:
            return [[cond, {}]], [[uncond, {}]]
        c = control.copy().set_cond_hint(hint, 1.0, (0.0, 1.0))  # as Apply ControlNet does
        return ([[cond, {"control": c, "control_apply_to_uncond": False}]],
                [[uncond, {"control": c, "control_apply_to_uncond": False}]])

    def run(control):
        """Sample once; (step times after the first, peak memory)."""
        positive, negative = conds(control)
        stamps = []
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(5))

        def callback(step, x0, x, total):
            if device.type == "cuda":
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

        with PeakRSS(baseline) as rss:
            stamps.append(time.perf_counter())
            comfy.sample.sample(model, noise, args.steps, args.cfg, "euler", "normal", positive, negative,
                                latent, denoise=1.0, callback=callback, disable_pbar=True, seed=5)
        peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else rss.peak - baseline
        return [b - a for a, b in zip(stamps[1:], stamps[2:])], peak  # first step: loading, warm-up

    baseline = PeakRSS.current()
    configs = {"none": None, "plain": plain, "ts": ts}
    times = {name: [] for name in configs}
    peaks = {name: 0 for name in configs}
    print(f"device {device}, {'tiny' if args.tiny else 'SD1.5-size'} UNet, {args.size}x{args.size}, "
          f"{args.steps} steps x {args.repeats} (interleaved), cfg {args.cfg}, euler, {torch.get_num_threads()} threads")
    for _ in range(args.repeats):  # interleaved, so background load hits every configuration alike
        for name, control in configs.items():
            step_times, peak = run(control)
            times[name] += step_times
            peaks[name] = max(peaks[name], peak)
    per_step = {name: statistics.median(t) for name, t in times.items()}
    for name, control in configs.items():
        models = [] if control is None else control.get_models()
        weights = sum(m.model_size() for m in models)
        spread = f"{min(times[name]) * 1000:.0f}-{max(times[name]) * 1000:.0f}"
        print(f"{name:6s} {per_step[name] * 1000:9.1f} ms/step (median of {len(times[name])}, {spread})   "
              f"peak {'CUDA alloc' if device.type == 'cuda' else 'RSS above weights'} {peaks[name] / 2**20:7.0f} MiB   "
              f"ControlNet weights {weights / 2**20:7.1f} MiB in {len(models)} patcher(s)")
    fastest = {name: min(t) for name, t in times.items()}  # robust to other processes' load
    print(f"ratio ts/plain {per_step['ts'] / per_step['plain']:.2f} per step, median "
          f"({fastest['ts'] / fastest['plain']:.2f} fastest steps) (target <= 1.6); "
          f"plain/none {per_step['plain'] / per_step['none']:.2f}; "
          f"peak ts - plain {(peaks['ts'] - peaks['plain']) / 2**20:+.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
