"""The TS-ControlNet bundle: both branches in one .safetensors file.

Tensors are the two ControlNet state dicts, prefixed `scene.` and `text.` (each in a layout
ComfyUI's ControlNet loader reads). Metadata (all strings, as safetensors requires):

    glyphsr_format  "ts-controlnet/1"
    beta            text-branch weight in 0..1, e.g. "0.5"
    text_hint       the image the text branch was trained to see: "lq" (the upscaled LQ image, the
                    scene branch's hint) or "restored" (the stage-1 restored image R); "+glyph"
                    ("lq+glyph", "restored+glyph") adds the glyph map as extra hint input channels
    base            "sd15", "sdxl" or "other"
    text_weights    optional; "scene": no `text.` tensors, the text branch runs the scene branch's
                    weights (loaded once) on its own hint, which must then be "restored"

A bundle without `scene.` tensors (text-only) is valid: the scene branch then comes from the
user's own ControlNet file. Only safetensors files are read; pickles are never loaded.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from ..errors import InputNotFoundError
from .errors import BundleError
from .branch_info import BASES, LQ_CHANNELS, BranchInfo, inspect_branch

FORMAT = "ts-controlnet/1"
FORMAT_KEY = "glyphsr_format"
TEXT_HINTS = ("lq", "lq+glyph", "restored", "restored+glyph")
#: metadata value of `text_weights` for a text branch that shares the scene branch's weights
SHARED_WEIGHTS = "scene"
#: glyph channels a text branch may add to the RGB hint: 1 (grey glyph map, what
#: `init_text_from_scene(glyph_channel=True)` makes) or 3 (the glyph IMAGE as RGB)
GLYPH_CHANNEL_CHOICES = (1, 3)
SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
_PREFIXES = ("scene.", "text.")


@dataclass
class TSBundle:
    """Two ControlNet state dicts and how to blend them. `scene` is None for a text-only bundle."""

    scene: dict | None
    text: dict
    beta: float = 0.5
    text_hint: str = "lq"
    base: str = "other"
    #: the text branch is the scene branch's weights (same tensors), fed a different hint
    shared: bool = False

    @property
    def glyph_channels(self) -> int:
        """Hint input channels the text branch has beyond the scene branch's (0 for 'lq')."""
        text = inspect_branch(self.text, "text branch").hint_channels
        scene = inspect_branch(self.scene, "scene branch").hint_channels if self.scene else LQ_CHANNELS
        return text - scene


def hint_image(text_hint: str) -> str:
    """Which image a text branch with this `text_hint` sees: 'lq' (upscaled LQ) or 'restored' (R)."""
    return text_hint.split("+", 1)[0]


def takes_glyph(text_hint: str) -> bool:
    """Whether a text branch with this `text_hint` takes the glyph map as extra hint channels."""
    return text_hint.endswith("+glyph")


def shared_bundle(scene: dict, beta: float = 0.5, base: str = "other") -> TSBundle:
    """A TS-ControlNet whose text branch is `scene` itself, fed the restored image (no training, no copy)."""
    return TSBundle(scene=scene, text=scene, beta=beta, text_hint="restored", base=base, shared=True)


def load_safetensors(path: str | os.PathLike, name: str = "file") -> tuple[dict, dict]:
    """(tensors, metadata) of a .safetensors file, with errors that name `name` and the path."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{name} not found: {path}")
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise BundleError(
            f"{name} {path.name}: only .safetensors files are loaded (pickle-based .pth/.ckpt/.bin files can run "
            f"code when opened). Convert it to .safetensors first."
        )
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for a bad header or data
        raise BundleError(f"{name} {path.name} is not a readable .safetensors file ({exc})") from exc
    return tensors, metadata


def is_bundle(metadata: Mapping) -> bool:
    return FORMAT_KEY in metadata


def split_bundle(tensors: Mapping, metadata: Mapping, name: str = "bundle") -> TSBundle:
    """Build a TSBundle from a bundle file's tensors and metadata (validated)."""
    fmt = metadata.get(FORMAT_KEY)
    if fmt != FORMAT:
        raise BundleError(f"{name}: {FORMAT_KEY}={fmt!r} is not supported (this version reads {FORMAT!r}); "
                          f"a newer format needs a newer ComfyUI-GlyphSR")
    branches: dict[str, dict] = {"scene.": {}, "text.": {}}
    stray = []
    for key, tensor in tensors.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                branches[prefix][key[len(prefix):]] = tensor
                break
        else:
            stray.append(key)
    if stray:
        raise BundleError(f"{name}: tensors outside the 'scene.'/'text.' branches: {stray[:5]}")
    shared = metadata.get("text_weights", "") == SHARED_WEIGHTS
    if shared:
        if branches["text."]:
            raise BundleError(f"{name}: text_weights={SHARED_WEIGHTS!r} (shared) but the file has 'text.' tensors")
        if not branches["scene."]:
            raise BundleError(f"{name}: text_weights={SHARED_WEIGHTS!r} (shared) needs the 'scene.' tensors")
        branches["text."] = branches["scene."]
    elif metadata.get("text_weights", ""):
        raise BundleError(f"{name}: text_weights={metadata['text_weights']!r} is not supported "
                          f"(only {SHARED_WEIGHTS!r}, or no entry for a text branch of its own)")
    try:
        beta = float(metadata.get("beta", "0.5"))
    except ValueError:
        raise BundleError(f"{name}: metadata beta={metadata.get('beta')!r} is not a number") from None
    bundle = TSBundle(scene=branches["scene."] or None, text=branches["text."], beta=beta,
                      text_hint=metadata.get("text_hint", "lq"), base=metadata.get("base", "other"), shared=shared)
    validate_bundle(bundle, name)
    return bundle


def read_bundle(path: str | os.PathLike) -> TSBundle:
    """Read and validate a bundle file."""
    tensors, metadata = load_safetensors(path, "TS-ControlNet bundle")
    if not is_bundle(metadata):
        raise BundleError(f"{Path(path).name} is not a TS-ControlNet bundle (no '{FORMAT_KEY}' metadata); "
                          f"a plain ControlNet file can be used as the scene or text branch instead")
    return split_bundle(tensors, metadata, Path(path).name)


def write_bundle(path: str | os.PathLike, bundle: TSBundle) -> Path:
    """Validate and write `bundle` to `path` (written to a temporary file, then renamed)."""
    validate_bundle(bundle)
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise BundleError(f"output {path.name}: a bundle must be a .safetensors file")
    tensors = {}
    branches = (("scene.", bundle.scene),) if bundle.shared else (("scene.", bundle.scene or {}), ("text.", bundle.text))
    for prefix, sd in branches:
        for key, tensor in sd.items():
            tensors[prefix + key] = tensor.detach().contiguous()
    _unshare(tensors)
    metadata = {FORMAT_KEY: FORMAT, "beta": repr(float(bundle.beta)), "text_hint": bundle.text_hint,
                "base": bundle.base}
    if bundle.shared:
        metadata["text_weights"] = SHARED_WEIGHTS
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _unshare(tensors: dict) -> None:
    """safetensors refuses tensors sharing storage (e.g. a branch copied without cloning)."""
    seen: set[int] = set()
    for key, tensor in tensors.items():
        ptr = tensor.untyped_storage().data_ptr() if tensor.numel() else None
        if ptr is not None and ptr in seen:
            tensors[key] = tensor.clone()
        elif ptr is not None:
            seen.add(ptr)


def validate_bundle(bundle: TSBundle, name: str = "bundle") -> None:
    """Raise BundleError naming the first problem: settings, layouts, keys, shapes, hint channels."""
    if not isinstance(bundle.text, Mapping) or not bundle.text:
        raise BundleError(f"{name} has no text branch ('text.' tensors)")
    beta = bundle.beta
    if not isinstance(beta, (int, float)) or not math.isfinite(beta) or not 0.0 <= beta <= 1.0:
        raise BundleError(f"{name}: beta must be between 0 and 1, got {beta!r}")
    if bundle.text_hint not in TEXT_HINTS:
        raise BundleError(f"{name}: text_hint must be one of {TEXT_HINTS}, got {bundle.text_hint!r}")
    if bundle.base not in BASES:
        raise BundleError(f"{name}: base must be one of {BASES}, got {bundle.base!r}")
    if bundle.shared:
        _check_shared(bundle, name)
    text = inspect_branch(bundle.text, f"{name} text branch")
    scene = inspect_branch(bundle.scene, f"{name} scene branch") if bundle.scene else None
    for info, which in ((text, "text"), (scene, "scene")):
        if info is not None and bundle.base != "other" and info.base != "other" and info.base != bundle.base:
            raise BundleError(f"{name}: base is {bundle.base!r} but the {which} branch's shapes are those of "
                              f"{info.base!r}")
    if scene is not None:
        _compare_branches(bundle.scene, bundle.text, scene, text, name)
    extra = text.hint_channels - (scene.hint_channels if scene else LQ_CHANNELS)
    _check_hint(bundle.text_hint, extra, text, scene, name)


def _check_shared(bundle: TSBundle, name: str) -> None:
    """A shared text branch is the scene branch itself, so only a different hint makes it useful."""
    if bundle.scene is None or bundle.text is not bundle.scene:
        raise BundleError(f"{name}: a shared text branch runs the scene branch's weights, so the bundle needs the "
                          f"scene branch and the text branch must be that same state dict")
    if bundle.text_hint != "restored":
        raise BundleError(f"{name}: a shared text branch must see the restored image (text_hint 'restored'), got "
                          f"{bundle.text_hint!r}: with the scene branch's weights and hint it would equal the scene "
                          f"branch")


def _check_hint(text_hint: str, extra: int, text: BranchInfo, scene: BranchInfo | None, name: str) -> None:
    against = f"the scene branch's {scene.hint_channels}" if scene else f"the {LQ_CHANNELS} of an RGB LQ image"
    if not takes_glyph(text_hint) and extra != 0:
        raise BundleError(f"{name}: text_hint {text_hint!r} needs the text branch to take the same hint channels as "
                          f"the scene branch, but its first hint conv takes {text.hint_channels} channels vs {against} "
                          f"(set text_hint '{text_hint}+glyph' if the extra channels are a glyph map)")
    if takes_glyph(text_hint) and extra not in GLYPH_CHANNEL_CHOICES:
        raise BundleError(f"{name}: text_hint {text_hint!r} needs the text branch's first hint conv to take "
                          f"{' or '.join(str(c) for c in GLYPH_CHANNEL_CHOICES)} channel(s) more than {against}, "
                          f"but it takes {text.hint_channels}")


def _compare_branches(scene_sd: Mapping, text_sd: Mapping, scene: BranchInfo, text: BranchInfo, name: str) -> None:
    if scene.layout != text.layout:
        raise BundleError(f"{name}: the scene branch is in {scene.layout} layout and the text branch in "
                          f"{text.layout} layout; save both in the same layout")
    only_scene = sorted(set(scene_sd) - set(text_sd))
    only_text = sorted(set(text_sd) - set(scene_sd))
    if only_scene or only_text:
        raise BundleError(f"{name}: scene and text branches have different architectures: "
                          f"{len(only_scene)} tensor(s) only in scene {_preview(only_scene)}, "
                          f"{len(only_text)} only in text {_preview(only_text)}")
    for key in scene_sd:
        s_shape, t_shape = tuple(scene_sd[key].shape), tuple(text_sd[key].shape)
        if s_shape == t_shape:
            continue
        if key == text.hint_key and len(s_shape) == len(t_shape) == 4 and s_shape[0] == t_shape[0] \
                and s_shape[2:] == t_shape[2:]:
            continue  # extra glyph input channels, checked against text_hint afterwards
        raise BundleError(f"{name}: scene and text branches differ in shape at '{key}': "
                          f"scene {s_shape} vs text {t_shape}")


def _preview(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{', ...' if len(keys) > limit else ''}]"


def clone_state_dict(sd: Mapping) -> dict:
    return {key: tensor.detach().clone() for key, tensor in sd.items()}


def zero_pad_hint(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A hint conv weight [out, in, k, k] with `channels` extra zero input channels appended."""
    pad = weight.new_zeros(weight.shape[0], channels, *weight.shape[2:])
    return torch.cat([weight, pad], dim=1)
