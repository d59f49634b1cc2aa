"""Test-only ComfyUI nodes (installed by tests/integration/conftest.py, never shipped).

GlyphSRTest_RecordingModel wraps a MODEL with a UNet function wrapper that writes, for every UNet
call, the sigma, the sampling sigmas and which of four reference CONDITIONINGs each batch chunk
carries. Tests read the JSON lines to see which prompt pair really reached the model per step.

GlyphSRTest_RecordSampling wraps a MODEL and writes, per UNet call, the sigma, the batch, the
cond/uncond order and a fingerprint (sum) of each chunk's prompt embedding, saves the ControlNet residuals that call received (`<path>.call<N>.safetensors`),
and, per model evaluation, the CFG scale ComfyUI's sampling_function applied (a post-CFG hook).
GlyphSRTest_RecordingTSControl patches the TS-ControlNet attached to a CONDITIONING so that every
branch call writes the branch, the mean of the hint it ran on, its control model's id and the
TS-ControlNet's model patchers ComfyUI holds loaded at that moment (count and bytes).
GlyphSRTest_RecordControlHints (a pass-through on a CONDITIONING) wraps ControlNet.get_control at class
level, so that every ControlNet call, copies included (tiled sampling copies each control per tile
batch), writes the shape of the hint it ran on and each row's sum.
"""

from __future__ import annotations

import json

import torch

REFERENCE_NAMES = ("scene_positive", "scene_negative", "text_positive", "text_negative")


def _label(chunk: torch.Tensor, references: dict[str, torch.Tensor]) -> str:
    for name, ref in references.items():
        if ref.shape[-2:] == chunk.shape[-2:] and torch.allclose(chunk.float().cpu(), ref.expand_as(chunk.cpu()),
                                                                 atol=1e-4, rtol=1e-4):
            return name
    return "unknown"


class RecordingModel:
    @classmethod
    def INPUT_TYPES(cls):
        conds = {name: ("CONDITIONING",) for name in REFERENCE_NAMES}
        return {"required": {"model": ("MODEL",), **conds, "path": ("STRING", {"default": ""})}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "wrap"
    CATEGORY = "_for_testing"

    def wrap(self, model, scene_positive, scene_negative, text_positive, text_negative, path):
        references = {name: cond[0][0].float().cpu() for name, cond in
                      zip(REFERENCE_NAMES, (scene_positive, scene_negative, text_positive, text_negative))}

        def wrapper(apply_model, args):
            c = args["c"]
            order = list(args["cond_or_uncond"])
            chunks = c["c_crossattn"].chunk(len(order))
            sigmas = c.get("transformer_options", {}).get("sample_sigmas")
            record = {
                "sigma": float(args["timestep"].flatten()[0]),
                "sample_sigmas": None if sigmas is None else [float(s) for s in sigmas.tolist()],
                "chunks": [[kind, _label(chunk, references)] for kind, chunk in zip(order, chunks)],
            }
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            return apply_model(args["input"], args["timestep"], **c)

        patched = model.clone()
        patched.set_model_unet_function_wrapper(wrapper)
        return (patched,)


class RecordSampling:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "path": ("STRING", {"default": ""})}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "wrap"
    CATEGORY = "_for_testing"

    def wrap(self, model, path):
        from safetensors.torch import save_file

        calls = [0]

        def write(record: dict) -> None:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

        def wrapper(apply_model, args):
            c = args["c"]
            call = calls[0]
            calls[0] += 1
            control = c.get("control")
            if control is not None:
                tensors = {f"{key}.{i}": t.detach().float().cpu().contiguous()
                           for key, values in control.items() for i, t in enumerate(values or []) if t is not None}
                save_file(tensors, f"{path}.call{call}.safetensors")
            order = list(args["cond_or_uncond"])
            chunks = c["c_crossattn"].chunk(len(order))
            write({"kind": "unet", "call": call, "sigma": float(args["timestep"].flatten()[0]),
                   "batch": int(args["input"].shape[0]), "cond_or_uncond": order, "control": control is not None,
                   # a fingerprint of the prompt embedding each chunk carried (0: cond, 1: uncond)
                   "crossattn_sums": {str(k): float(ch.double().sum()) for k, ch in zip(order, chunks)}})
            return apply_model(args["input"], args["timestep"], **c)

        def post_cfg(args):
            write({"kind": "cfg", "sigma": float(args["sigma"].flatten()[0]), "cond_scale": float(args["cond_scale"])})
            return args["denoised"]

        patched = model.clone()
        patched.set_model_unet_function_wrapper(wrapper)
        patched.set_model_sampler_post_cfg_function(post_cfg)
        return (patched,)


def _loaded(patchers: list) -> list:
    """The patchers among `patchers` that ComfyUI's model manager holds loaded now."""
    import comfy.model_management

    loaded = [m.model for m in comfy.model_management.current_loaded_models]
    return [p for p in patchers if any(p is m for m in loaded)]


class RecordingTSControl:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",), "path": ("STRING", {"default": ""})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "wrap"
    CATEGORY = "_for_testing"

    def wrap(self, conditioning, path):
        for _embedding, options in conditioning:
            ts = options["control"]
            for name in ("scene", "text"):
                self._patch(ts, getattr(ts, name), name, path)
        return (conditioning,)

    @staticmethod
    def _patch(ts, branch, name, path):
        original = branch.get_control

        def recorded(x_noisy, t, cond, batched_number, transformer_options):
            out = original(x_noisy, t, cond, batched_number, transformer_options)
            patchers = ts.get_models()
            loaded = _loaded(patchers)
            record = {"branch": name, "hint_mean": float(branch.cond_hint.float().mean()),
                      "hint_shape": list(branch.cond_hint.shape), "model_id": id(branch.control_model),
                      "patchers": len(patchers), "loaded_controlnets": len(loaded),
                      "loaded_bytes": sum(m.model_size() for m in loaded)}
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            return out

        branch.get_control = recorded


#: where ControlNet.get_control records the hints it ran on (set by GlyphSRTest_RecordControlHints)
_HINT_RECORD_PATH: list = [None]


def _record_hints_of_every_controlnet() -> None:
    """Wrap comfy.controlnet.ControlNet.get_control once, at class level, so copies record too."""
    import comfy.controlnet

    original = comfy.controlnet.ControlNet.get_control
    if getattr(original, "_glyphsr_records_hints", False):
        return

    def recorded(self, x_noisy, t, cond, batched_number, transformer_options):
        out = original(self, x_noisy, t, cond, batched_number, transformer_options)
        path = _HINT_RECORD_PATH[0]
        if path and self.cond_hint is not None:
            hint = self.cond_hint.detach().double().cpu()
            record = {"shape": list(hint.shape), "latent": list(x_noisy.shape),
                      "row_sums": [float(row[:3].sum()) for row in hint]}
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        return out

    recorded._glyphsr_records_hints = True
    comfy.controlnet.ControlNet.get_control = recorded


class RecordControlHints:
    """Pass-through on a CONDITIONING: from now on every ControlNet call (any copy) writes the shape
    of the hint it ran on and each row's sum over its first three channels to `path`."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",), "path": ("STRING", {"default": ""})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "wrap"
    CATEGORY = "_for_testing"

    def wrap(self, conditioning, path):
        _record_hints_of_every_controlnet()
        _HINT_RECORD_PATH[0] = path
        return (conditioning,)


NODE_CLASS_MAPPINGS = {"GlyphSRTest_RecordingModel": RecordingModel, "GlyphSRTest_RecordSampling": RecordSampling,
                       "GlyphSRTest_RecordingTSControl": RecordingTSControl,
                       "GlyphSRTest_RecordControlHints": RecordControlHints}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSRTest_RecordingModel": "GlyphSR Test Recording Model",
                              "GlyphSRTest_RecordSampling": "GlyphSR Test Record Sampling",
                              "GlyphSRTest_RecordingTSControl": "GlyphSR Test Recording TS-ControlNet",
                              "GlyphSRTest_RecordControlHints": "GlyphSR Test Record ControlNet Hints"}
