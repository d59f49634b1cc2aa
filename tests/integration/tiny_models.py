"""Tiny random-weight models that real ComfyUI loads, for the integration tests.

Two halves live in this file:

- The pytest side (`build_model`, `ensure_model`, `install_model`, `MODEL_KINDS`): never imports
  ComfyUI. It runs this file as a script in a subprocess, with `cwd=COMFYUI_DIR` and the ComfyUI
  interpreter, because the pytest process has the ComfyUI stand-in (`tests/comfy_standin/`) on sys.path.
- The builder side (`main()` and the `_build_*` functions): runs inside that subprocess and uses
  ComfyUI's own classes, so the files have exactly the layout ComfyUI's loaders detect.

Models (random init, fixed seed, fp16 on disk):

- "sd15" (~290 MiB): an SD1.5 checkpoint. The UNet keeps SD1.5's widths (model_channels 320,
  context 768, 8 heads) so ComfyUI's detection still picks the SD15 model config, but has one level
  with one res block; its output is scaled to predict unit-spread noise. CLIP-L is full size (its
  shape is fixed). The VAE is TAESD (fast decode; ComfyUI recognises `taesd_decoder.*` inside a
  checkpoint), scaled so sampler outputs decode to mid-grey images with visible variation.
- "sd15_fullvae" (~445 MiB): the same with the standard SD1.x KL VAE (slower decode).
- "controlnet" (~30 MiB): an SD1.5 ControlNet in the original `control_model.*` layout matching the
  tiny UNet (3-channel RGB hint). Its zero convs are random, not zero, so it visibly changes the
  sampler output (strength 0 vs 1: ~15/255 mean change at 64 px).
- "controlnet_glyph": the same with a 6-channel hint (LQ RGB + 3-channel glyph); ComfyUI infers the
  hint channels from `input_hint_block.0.weight`.
- "sdxl" (~1.8 GiB; built in ~30 s): an SDXL checkpoint that ComfyUI detects as exactly its `SDXL`
  model config (not a subclass such as SSD-1B). Detection checks model_channels 320, the transformer
  depth per input res block [0, 0, 2, 2, 10, 10], linear proj_in, context 2048 and class-embedding
  input 2816, but not channel_mult, so the tiny UNet keeps SDXL's block pattern at width 320 on all
  three levels, with lighter output and middle blocks (~150M parameters). CLIP-L and CLIP-G are full
  size (~820M parameters: their shapes come from fixed configs), which is where the size goes; the
  CLIP keys are written in checkpoint layout by ComfyUI's SDXL saving code. The VAE is the same
  calibrated TAESD (SDXL latents decode to ~0.47 +- 0.17 with it). The builder loads the file back
  and fails unless ComfyUI detects SDXL and reports no missing CLIP weights.
- "controlnet_sdxl" (~210 MiB): an SDXL ControlNet (`control_model.*`, 3-channel hint, class
  embedding 2816) matching the tiny SDXL UNet (strength 0 vs 1: ~20/255 mean change at 64 px).

Put a built file where the server looks with `install_model(path, server.models_dir / "checkpoints")`
(a hard link or copy; ComfyUI re-lists a folder when its mtime changes, so files added after the
server started are visible).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SEED = 20260311
# Bump when a builder changes: cached files with another version are rebuilt.
BUILDER_VERSION = "3"
# Latent spread (std) the tiny random UNet leaves after a few sampler steps; TAESD is scaled to it
# (measured: strength 0 vs 1 of the tiny ControlNet then moves 64 px outputs by ~15/255 on average).
TAESD_LATENT_SPREAD = 40.0

# kind -> (file name, ComfyUI models sub-folder)
MODEL_KINDS: dict[str, tuple[str, str]] = {
    "sd15": ("glyphsr_tiny_sd15.safetensors", "checkpoints"),
    "sd15_fullvae": ("glyphsr_tiny_sd15_fullvae.safetensors", "checkpoints"),
    "controlnet": ("glyphsr_tiny_sd15_controlnet.safetensors", "controlnet"),
    "controlnet_glyph": ("glyphsr_tiny_sd15_controlnet_glyph.safetensors", "controlnet"),
    "sdxl": ("glyphsr_tiny_sdxl.safetensors", "checkpoints"),
    "controlnet_sdxl": ("glyphsr_tiny_sdxl_controlnet.safetensors", "controlnet"),
}

# Tiny SD1.5 UNet: SD1.5 widths, one level, one res block (with a transformer) per level.
TINY_SD15_UNET = {
    "use_checkpoint": False,
    "image_size": 32,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [1],
    "transformer_depth": [1],
    "transformer_depth_output": [1, 1],
    "channel_mult": [1],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": False,
    "context_dim": 768,
    "num_heads": 8,
    "num_head_channels": -1,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
}

# Tiny SDXL UNet. ComfyUI picks its SDXL model config when model_channels is 320, the transformer
# depth per input res block is exactly [0, 0, 2, 2, 10, 10], context 2048 (linear proj_in) and the
# class-embedding input 2816; channel_mult is not checked, so every level stays 320 wide (SDXL's is
# [1, 2, 4]), and the output blocks and the middle block carry fewer transformer blocks than SDXL's.
TINY_SDXL_UNET = {
    "use_checkpoint": False,
    "image_size": 32,
    "use_spatial_transformer": True,
    "legacy": False,
    "num_classes": "sequential",
    "adm_in_channels": 2816,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [2, 2, 2],
    "transformer_depth": [0, 0, 2, 2, 10, 10],
    "transformer_depth_output": [0, 0, 0, 0, 0, 0, 1, 1, 1],
    "channel_mult": [1, 1, 1],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": True,
    "context_dim": 2048,
    "num_heads": -1,
    "num_head_channels": 64,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
}

UNET_CONFIGS = {"sd15": TINY_SD15_UNET, "sdxl": TINY_SDXL_UNET}


# --------------------------------------------------------------------------------------------
# pytest side (no ComfyUI imports)
# --------------------------------------------------------------------------------------------

def comfy_python() -> str:
    """The interpreter that runs ComfyUI: $COMFYUI_PYTHON, else the current one."""
    return os.environ.get("COMFYUI_PYTHON") or sys.executable


# Prepended to code run by `run_comfy_python`: import ComfyUI as a library, CPU only, no CLI parsing.
COMFY_PREAMBLE = """\
import os, sys
sys.path.insert(0, os.getcwd())
import comfy.options
comfy.options.enable_args_parsing(False)
import comfy.cli_args
comfy.cli_args.args.cpu = True
"""


def run_comfy_python(code: str, *args: str, comfyui_dir: Path | str | None = None,
                     timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `code` with ComfyUI's interpreter in COMFYUI_DIR, after COMFY_PREAMBLE (so `import comfy...`
    gives the real ComfyUI on CPU). Extra `args` land in sys.argv[1:]. Raises with the output on failure."""
    comfyui_dir = Path(comfyui_dir or os.environ["COMFYUI_DIR"])
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run([comfy_python(), "-c", COMFY_PREAMBLE + code, *args], cwd=str(comfyui_dir),
                          env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"ComfyUI subprocess failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def build_model(kind: str, out_path: Path, comfyui_dir: Path | str | None = None, timeout: float = 600) -> Path:
    """Build one tiny model file with ComfyUI's classes, in a subprocess. Returns `out_path`."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {sorted(MODEL_KINDS)}")
    comfyui_dir = Path(comfyui_dir or os.environ["COMFYUI_DIR"])
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # written next to the target, then renamed; keeps the suffix ComfyUI's loader dispatches on
    tmp = out_path.with_name(f"{out_path.stem}.partial{os.getpid()}{out_path.suffix}")
    code = (f"sys.path.insert(1, {str(Path(__file__).resolve().parent)!r})\n"
            "import tiny_models\nsys.exit(tiny_models.main(sys.argv[1:]))\n")
    try:
        run_comfy_python(code, "--kind", kind, "--out", str(tmp), comfyui_dir=comfyui_dir, timeout=timeout)
    except RuntimeError as err:
        raise RuntimeError(f"building tiny model {kind!r} failed: {err}") from None
    os.replace(tmp, out_path)
    return out_path


def cache_dir() -> Path:
    """$GLYPHSR_TEST_CACHE when set (reused across runs), else one temp folder per process."""
    env = os.environ.get("GLYPHSR_TEST_CACHE")
    if env:
        path = Path(env)
    else:
        global _SESSION_CACHE
        if _SESSION_CACHE is None:
            _SESSION_CACHE = Path(tempfile.mkdtemp(prefix="glyphsr_tiny_models_"))
        path = _SESSION_CACHE
    path.mkdir(parents=True, exist_ok=True)
    return path


_SESSION_CACHE: Path | None = None


def remove_session_cache() -> None:
    """Delete this process's temporary model cache (never $GLYPHSR_TEST_CACHE)."""
    global _SESSION_CACHE
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)
        _SESSION_CACHE = None


def ensure_model(kind: str, comfyui_dir: Path | str | None = None) -> Path:
    """Path of the cached tiny model of `kind`, building it on first use."""
    name, _folder = MODEL_KINDS[kind]
    path = cache_dir() / name
    if not path.exists() or safetensors_metadata(path).get("glyphsr_tiny_version") != BUILDER_VERSION:
        build_model(kind, path, comfyui_dir)
    return path


def safetensors_metadata(path: Path) -> dict:
    """The `__metadata__` of a .safetensors file (read from its JSON header; no torch needed)."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    return header.get("__metadata__", {})


def install_model(src: Path, folder: Path) -> Path:
    """Make `src` visible in a ComfyUI models folder (hard link when possible, else a copy)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / Path(src).name
    if not dst.exists():
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    return dst


# --------------------------------------------------------------------------------------------
# builder side (runs in a subprocess with cwd=COMFYUI_DIR and ComfyUI's interpreter)
# --------------------------------------------------------------------------------------------

def _random_init(module, seed: int) -> None:
    """Give every layer a seeded default init (ComfyUI's ops skip weight init on purpose)."""
    import torch

    torch.manual_seed(seed)
    layer_types = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv1d, torch.nn.Conv3d,
                   torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.Embedding)
    initialised: set[int] = set()
    for m in module.modules():
        for cls in layer_types:
            if isinstance(m, cls):
                cls.reset_parameters(m)
                initialised.update(id(p) for p in m.parameters(recurse=False))
                break
    # Parameters outside those layers must be ones created with real values (scales, shifts).
    allowed = {"logit_scale", "vae_scale", "vae_shift"}
    stray = [n for n, p in module.named_parameters()
             if id(p) not in initialised and n.rsplit(".", 1)[-1] not in allowed]
    if stray:
        raise RuntimeError(f"parameters left uninitialised: {stray[:8]}")


def _unet_state_dict(base: str = "sd15") -> dict:
    import torch
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
    import comfy.ops

    config = UNET_CONFIGS[base]
    unet = UNetModel(**config, dtype=torch.float32, device="cpu", operations=comfy.ops.disable_weight_init)
    _random_init(unet, SEED)
    with torch.no_grad():  # predict noise of unit spread, like a trained model, so ControlNet residuals show
        g = torch.Generator().manual_seed(SEED)
        x, context = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 77, config["context_dim"], generator=g)
        extra = {}
        if config["adm_in_channels"]:
            extra["y"] = torch.randn(2, config["adm_in_channels"], generator=g)
        eps = unet(x, torch.tensor([500.0, 900.0]), context=context, **extra)
        unet.out[2].weight.div_(eps.std())
        unet.out[2].bias.zero_()
    return unet.state_dict()


def _clip_state_dict() -> dict:
    import torch
    import comfy.sd1_clip

    clip = comfy.sd1_clip.SDClipModel(device="cpu", dtype=torch.float32)
    _random_init(clip, SEED + 1)
    return clip.state_dict()


def _sdxl_clip_state_dict() -> dict:
    """CLIP-L + CLIP-G (full size: their shapes come from fixed configs), in checkpoint key layout
    (`conditioner.embedders.*`), converted by ComfyUI's own SDXL saving code."""
    import torch
    import comfy.sdxl_clip
    import comfy.supported_models

    clip = comfy.sdxl_clip.SDXLClipModel(device="cpu", dtype=torch.float32)
    _random_init(clip, SEED + 1)
    sd = clip.state_dict()
    del clip
    return comfy.supported_models.SDXL(TINY_SDXL_UNET).process_clip_state_dict_for_saving(sd)


def _vae_state_dict(full: bool) -> dict:
    import torch

    if full:
        from comfy.ldm.models.autoencoder import AutoencoderKL
        ddconfig = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3,
                    "out_ch": 3, "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                    "attn_resolutions": [], "dropout": 0.0}
        vae = AutoencoderKL(ddconfig=ddconfig, embed_dim=4)
        _random_init(vae, SEED + 2)
    else:
        import comfy.taesd.taesd
        vae = comfy.taesd.taesd.TAESD(latent_channels=4)
        _random_init(vae, SEED + 2)
        _calibrate_taesd(vae)
    return vae.state_dict()


def _calibrate_taesd(vae) -> None:
    """Make a random TAESD decode sampler latents to mid-grey images with visible variation.

    Default init shrinks the signal through its ReLU blocks, so raw outputs sit near 0 (black
    after ComfyUI's clamp). Rescale the latent input and the last conv so that latents with the
    spread a tiny random UNet leaves behind decode to about 0.5 +- 0.2.
    """
    import torch

    decoder = vae.taesd_decoder
    with torch.no_grad():
        vae.vae_scale.fill_(1.0 / TAESD_LATENT_SPREAD)
        z = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(SEED)) * TAESD_LATENT_SPREAD
        features = decoder[:-1]((z - vae.vae_shift) * vae.vae_scale)
        last = decoder[-1]
        y = last(features)
        last.weight.mul_(0.2 / y.std().clamp_min(1e-6))
        y = last(features)
        last.bias.sub_(y.mean(dim=(0, 2, 3)) - 0.5)  # the decoder output is the image value


def _controlnet_state_dict(hint_channels: int, base: str = "sd15") -> dict:
    import torch
    import comfy.cldm.cldm
    import comfy.ops

    config = {k: v for k, v in UNET_CONFIGS[base].items() if k != "out_channels"}
    net = comfy.cldm.cldm.ControlNet(**config, hint_channels=hint_channels, dtype=torch.float32,
                                     device="cpu", operations=comfy.ops.disable_weight_init)
    _random_init(net, SEED + 3 + hint_channels)
    return net.state_dict()


def _half(sd: dict, prefix: str) -> dict:
    import torch

    return {prefix + k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous()
            for k, v in sd.items()}


def _check_checkpoint(path: str, base: str = "sd15") -> None:
    """Load the file back through ComfyUI's own detection; fail loudly if it is not the expected
    model config (exactly SD15 / SDXL, not a subclass) or if a CLIP weight is missing."""
    import logging
    import comfy.sd
    import comfy.supported_models

    expected = {"sd15": comfy.supported_models.SD15, "sdxl": comfy.supported_models.SDXL}[base]
    missing = []

    class _Missing(logging.Handler):
        def emit(self, record):
            if "missing" in record.getMessage():
                missing.append(record.getMessage())

    handler = _Missing(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=True)
    finally:
        logging.getLogger().removeHandler(handler)
    if type(model.model.model_config) is not expected:
        raise RuntimeError(f"ComfyUI detected {type(model.model.model_config).__name__}, not {expected.__name__}")
    if clip is None or vae is None:
        raise RuntimeError("ComfyUI found no CLIP or no VAE in the tiny checkpoint")
    if missing:
        raise RuntimeError(f"ComfyUI reported missing weights: {missing[:3]}")


def _check_controlnet(path: str, hint_channels: int, base: str = "sd15") -> None:
    import comfy.controlnet

    control = comfy.controlnet.load_controlnet(path)
    if control is None:
        raise RuntimeError("ComfyUI could not detect the tiny ControlNet")
    got = control.control_model.input_hint_block[0].weight.shape[1]
    if got != hint_channels:
        raise RuntimeError(f"ControlNet loaded with {got} hint channels, expected {hint_channels}")
    label_emb = getattr(control.control_model, "label_emb", None)
    adm = label_emb[0][0].weight.shape[1] if label_emb is not None else None
    if adm != UNET_CONFIGS[base]["adm_in_channels"]:
        raise RuntimeError(f"ControlNet loaded with class-embedding input {adm}, expected "
                           f"{UNET_CONFIGS[base]['adm_in_channels']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=sorted(MODEL_KINDS), required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    if "comfy.cli_args" not in sys.modules:  # run as a script rather than via run_comfy_python
        exec(COMFY_PREAMBLE, {})
    from comfy.utils import save_torch_file

    metadata = {"glyphsr_tiny": args.kind, "glyphsr_tiny_version": BUILDER_VERSION}
    if args.kind.startswith("sd15"):
        sd = {}
        sd.update(_half(_unet_state_dict(), "model.diffusion_model."))
        sd.update(_half(_clip_state_dict(), "cond_stage_model."))
        sd.update(_half(_vae_state_dict(full=args.kind == "sd15_fullvae"), "first_stage_model."))
        save_torch_file(sd, args.out, metadata=metadata)
        _check_checkpoint(args.out)
    elif args.kind == "sdxl":
        sd = {}
        sd.update(_half(_unet_state_dict("sdxl"), "model.diffusion_model."))
        sd.update(_half(_sdxl_clip_state_dict(), ""))
        sd.update(_half(_vae_state_dict(full=False), "first_stage_model."))
        save_torch_file(sd, args.out, metadata=metadata)
        del sd
        _check_checkpoint(args.out, "sdxl")
    else:
        base = "sdxl" if args.kind.endswith("_sdxl") else "sd15"
        hint = 6 if args.kind == "controlnet_glyph" else 3
        sd = _half(_controlnet_state_dict(hint, base), "control_model.")
        save_torch_file(sd, args.out, metadata=metadata)
        _check_controlnet(args.out, hint, base)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
