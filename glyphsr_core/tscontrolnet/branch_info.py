"""What a ControlNet state dict is, read from its keys and shapes alone (no ComfyUI, no weights run).

Three layouts are recognised, the ones ComfyUI's ControlNet loader accepts for SD-style UNets:
`ldm` (`input_hint_block.0.weight`, `zero_convs.N.0.*`), `ldm` with a `control_model.` prefix
(the original .pth layout, often re-saved as safetensors) and `diffusers`
(`controlnet_cond_embedding.conv_in.weight`, `controlnet_down_blocks.N.*`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .errors import BundleError

#: (layout name, key prefix, first hint conv, first zero conv)
LAYOUTS = (
    ("ldm", "", "input_hint_block.0.weight", "zero_convs.0.0.weight"),
    ("ldm", "control_model.", "control_model.input_hint_block.0.weight", "control_model.zero_convs.0.0.weight"),
    ("diffusers", "", "controlnet_cond_embedding.conv_in.weight", "controlnet_down_blocks.0.weight"),
)

#: the LQ image is an RGB hint
LQ_CHANNELS = 3
BASES = ("sd15", "sdxl", "other")


@dataclass(frozen=True)
class BranchInfo:
    """Facts about one ControlNet branch that matter for pairing and for the model it runs with."""

    layout: str
    hint_key: str
    hint_channels: int
    context_dim: int | None
    adm_channels: int | None

    @property
    def base(self) -> str:
        return base_from_dims(self.context_dim, self.adm_channels)


def base_from_dims(context_dim: int | None, adm_channels: int | None) -> str:
    """sd15 / sdxl from the cross-attention width and the class-embedding input, else 'other'."""
    if context_dim == 768 and not adm_channels:
        return "sd15"
    if context_dim == 2048 and adm_channels == 2816:
        return "sdxl"
    return "other"


def describe_base(context_dim: int | None, adm_channels: int | None) -> str:
    base = base_from_dims(context_dim, adm_channels)
    name = {"sd15": "SD1.x", "sdxl": "SDXL"}.get(base, "an unrecognised base")
    return f"{name} (cross-attention width {context_dim}, class-embedding input {adm_channels or 'none'})"


def inspect_branch(sd: Mapping, name: str = "branch") -> BranchInfo:
    """Recognise a ControlNet state dict; raise BundleError naming `name` when it is not one."""
    for layout, prefix, hint_key, zero_key in LAYOUTS:
        if hint_key in sd and zero_key in sd:
            break
    else:
        hint_like = [k for k in sd if "hint" in k or "cond_embedding" in k][:3]
        raise BundleError(
            f"{name} is not a ControlNet for an SD-style UNet: expected 'input_hint_block.0.weight' + "
            f"'zero_convs.0.0.weight' (ldm), the same under 'control_model.', or "
            f"'controlnet_cond_embedding.conv_in.weight' + 'controlnet_down_blocks.0.weight' (diffusers); "
            f"found {len(sd)} tensors" + (f" such as {hint_like}" if hint_like else "")
        )
    hint = sd[hint_key]
    if getattr(hint, "ndim", 0) != 4:
        raise BundleError(f"{name}: '{hint_key}' should be a 4-D conv weight, got shape {tuple(hint.shape)}")
    context_dim = None
    for key, tensor in sd.items():
        if key.endswith("attn2.to_k.weight") and key.startswith(prefix):
            context_dim = int(tensor.shape[1])
            break
    adm = None
    for key in (prefix + "label_emb.0.0.weight", "add_embedding.linear_1.weight"):
        if key in sd:
            adm = int(sd[key].shape[1])
            break
    return BranchInfo(layout=layout + ("/control_model" if prefix else ""), hint_key=hint_key,
                      hint_channels=int(hint.shape[1]), context_dim=context_dim, adm_channels=adm)


def detect_base(sd: Mapping) -> str:
    """'sd15', 'sdxl' or 'other' for a ControlNet state dict."""
    return inspect_branch(sd).base


def check_model_match(info: BranchInfo, model_context_dim: int | None, model_adm_channels: int | None,
                      name: str = "branch") -> None:
    """Raise BundleError when a branch cannot run with a UNet of these dims (e.g. SD1.5 vs SDXL)."""
    context_ok = info.context_dim is None or model_context_dim is None or info.context_dim == model_context_dim
    adm_ok = (info.adm_channels or None) == (model_adm_channels or None)
    if info.context_dim is None:
        adm_ok = True  # a layout we could not read fully: let ComfyUI decide
    if not (context_ok and adm_ok):
        raise BundleError(
            f"TS-ControlNet {name} branch was made for {describe_base(info.context_dim, info.adm_channels)}, "
            f"but the model being sampled is {describe_base(model_context_dim, model_adm_channels)}. "
            f"Load ControlNets made for this model."
        )
