"""Write a diffusers-layout ControlNet back in an original (ldm / `control_model.*`) layout.

diffusers converts original ControlNet files to its own layout but not back. The inverse here is
taken from diffusers' own forward conversion: the template (the scene ControlNet file, same
architecture) is converted with every tensor left as the same object, so each diffusers key can be
traced to the original key it came from. No key table is written by hand, and any layout diffusers
reads (SD1.5, SDXL, with or without the `control_model.` prefix) round-trips.
"""

from __future__ import annotations

from typing import Any

import torch

from .models import ModelLoadError, to_diffusers_layout


def original_key_map(template: dict[str, torch.Tensor], unet: Any) -> dict[str, str]:
    """{diffusers key: original key} for ControlNets shaped like `template` (an original-layout state dict)."""
    converted = to_diffusers_layout(template, unet)
    by_id = {id(tensor): key for key, tensor in template.items()}
    mapping = {}
    for key, tensor in converted.items():
        source = by_id.get(id(tensor))
        if source is None:
            raise ModelLoadError(f"cannot trace diffusers key {key!r} back to the original layout")
        mapping[key] = source
    return mapping


def diffusers_to_original(state_dict: dict[str, torch.Tensor], template: dict[str, torch.Tensor],
                          unet: Any) -> dict[str, torch.Tensor]:
    """`state_dict` (diffusers layout) renamed to `template`'s layout; shapes may differ only in hint channels."""
    mapping = original_key_map(template, unet)
    missing = sorted(set(state_dict) - set(mapping))
    if missing:
        raise ModelLoadError(f"{len(missing)} diffusers key(s) have no original-layout name, e.g. {missing[:3]}")
    out = {}
    for key, tensor in state_dict.items():
        original = mapping[key]
        expected = template[original].shape
        if tensor.shape != expected and not (key.endswith("conv_in.weight") and tensor.shape[0] == expected[0]):
            raise ModelLoadError(f"{key}: shape {tuple(tensor.shape)} does not fit {original} {tuple(expected)}")
        out[original] = tensor
    return out
