"""Stand-in for `comfy.model_detection` (tests only).

ComfyUI looks a diffusers-layout UNet or ControlNet up among the standard SD 1.x / 2.x / SDXL sizes;
the unit tests' models are tiny, so, as in ComfyUI for them, nothing is found.
"""

from __future__ import annotations


def unet_config_from_diffusers_unet(state_dict, dtype=None):
    return None
