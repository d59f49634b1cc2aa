"""TS-ControlNet: a scene and a text ControlNet branch stored, checked and paired for blending."""

from .assemble import assemble_branches
from .bundle import (
    FORMAT,
    GLYPH_CHANNEL_CHOICES,
    SHARED_WEIGHTS,
    TEXT_HINTS,
    TSBundle,
    hint_image,
    is_bundle,
    load_safetensors,
    read_bundle,
    shared_bundle,
    takes_glyph,
    validate_bundle,
    write_bundle,
)
from .errors import BundleError
from .text_init import GLYPH_CHANNELS, init_text_from_scene
from .branch_info import LQ_CHANNELS, BranchInfo, check_model_match, detect_base, inspect_branch

__all__ = [
    "FORMAT", "GLYPH_CHANNELS", "GLYPH_CHANNEL_CHOICES", "LQ_CHANNELS", "SHARED_WEIGHTS", "TEXT_HINTS", "BranchInfo",
    "BundleError", "TSBundle", "assemble_branches", "check_model_match", "detect_base", "hint_image",
    "init_text_from_scene", "inspect_branch", "is_bundle", "load_safetensors", "read_bundle", "shared_bundle",
    "takes_glyph", "validate_bundle", "write_bundle",
]
