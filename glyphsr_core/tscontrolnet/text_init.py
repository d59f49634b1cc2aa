"""Start a text branch as an exact copy of the scene branch (the paper's initialisation)."""

from __future__ import annotations

from typing import Mapping

from .bundle import clone_state_dict, zero_pad_hint
from .branch_info import inspect_branch

#: glyph channels `init_text_from_scene(glyph_channel=True)` adds: the glyph map is grey (white
#: glyphs on black), and ComfyUI concatenates extra hint inputs of any channel count
GLYPH_CHANNELS = 1


def init_text_from_scene(scene_sd: Mapping, glyph_channel: bool = False) -> dict:
    """A text-branch state dict copied from `scene_sd` (new tensors, the input is untouched).

    With `glyph_channel`, the first hint conv (`input_hint_block.0.weight` in ldm layout,
    `controlnet_cond_embedding.conv_in.weight` in diffusers layout) gets GLYPH_CHANNELS extra input
    channels with zero weights: on the same LQ hint the copy's output equals the scene branch's
    whatever glyph map is fed, and training can then learn to use the glyph.
    """
    info = inspect_branch(scene_sd, "scene branch")
    text = clone_state_dict(scene_sd)
    if glyph_channel:
        text[info.hint_key] = zero_pad_hint(text[info.hint_key], GLYPH_CHANNELS)
    return text
