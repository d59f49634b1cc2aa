"""Restorer files: save and load `.safetensors` in the layout spandrel detects ("RealESRGAN Compact").

Loading never unpickles: only safetensors, and only a state dict that is recognisably an SR net.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidInputError
from .compact import CompactSR
from .degrid import PhaseEqualized
from .split import fast_form


class RestorerFileError(InvalidInputError):
    """A restorer file is missing, unreadable or not a super-resolution network we can run."""


@dataclass
class LoadedRestorer:
    """A ready network and what we know about it."""

    model: torch.nn.Module
    scale: int
    path: Path
    architecture: str
    metadata: dict[str, Any]


def save_restorer(model: CompactSR, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write the weights as safetensors; `metadata` values are stored as JSON strings."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": "pt", "glyphsr": json.dumps({"architecture": "compact", "scale": model.scale,
                                                   "num_feat": model.num_feat, "num_conv": model.num_conv,
                                                   **(metadata or {})}, sort_keys=True)}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    partial = path.with_name(path.name + ".partial")
    save_file(state, str(partial), metadata=meta)
    partial.replace(path)
    return path


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise RestorerFileError(f"restorer model file not found: {path}")
    if path.suffix.lower() != ".safetensors":
        raise RestorerFileError(f"restorer model {path.name}: expected a .safetensors file (other formats can run code when loaded)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise RestorerFileError(f"restorer model {path.name} is not a readable safetensors file ({exc})") from exc
    return state, metadata


def compact_shape(state: dict[str, torch.Tensor]) -> tuple[int, int, int, int] | None:
    """(channels, num_feat, num_conv, scale) when `state` is a compact SR net, else None."""
    indices = sorted({int(m.group(1)) for key in state if (m := re.fullmatch(r"body\.(\d+)\.weight", key))})
    if len(indices) < 3 or indices != list(range(indices[-1] + 1)) or indices[-1] % 2:
        return None
    first, last = state["body.0.weight"], state[f"body.{indices[-1]}.weight"]
    if first.ndim != 4 or last.ndim != 4 or state["body.1.weight"].ndim != 1:
        return None
    channels, num_feat = first.shape[1], first.shape[0]
    ratio = last.shape[0] // channels
    scale = round(ratio ** 0.5)
    if scale * scale * channels != last.shape[0]:
        return None
    return channels, num_feat, (indices[-1] - 2) // 2, scale


def load_restorer(path: str | Path) -> LoadedRestorer:
    """Load a restorer: our compact net directly, other SR architectures through spandrel if installed."""
    path = Path(path)
    state, raw_meta = _read(path)
    try:
        metadata = json.loads(raw_meta.get("glyphsr", "{}"))
    except json.JSONDecodeError:
        metadata = {}
    shape = compact_shape(state)
    if shape is not None:
        channels, num_feat, num_conv, scale = shape
        if channels != 3:
            raise RestorerFileError(f"restorer model {path.name}: expected an RGB network (3 input channels), got {channels}")
        model = CompactSR(num_feat=num_feat, num_conv=num_conv, scale=scale)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise RestorerFileError(f"restorer model {path.name}: weights do not fit a compact SR net ({exc})") from exc
        # a bicubic-blended file (the bundled one) runs as its two halves: same output, a third of the work;
        # its pixel-shuffle grid is taken out at run time, so the file keeps the layout ComfyUI's loader reads
        return LoadedRestorer(PhaseEqualized(fast_form(model.eval())), scale, path, "compact", metadata)
    return _load_with_spandrel(path, state, metadata)


def _load_with_spandrel(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> LoadedRestorer:
    try:
        from spandrel import ImageModelDescriptor, ModelLoader
    except ImportError as exc:
        if (exc.name or "").startswith("torchvision"):
            raise RestorerFileError(f"model {path.name} is not a compact SR net, and spandrel (which reads other "
                                    "upscale-model architectures, as ComfyUI does) cannot import without torchvision: "
                                    "install the torchvision that matches your torch (ComfyUI's Python has it)") from exc
        raise RestorerFileError(f"restorer model {path.name} is not a compact SR net, and spandrel (which reads other "
                                "upscale-model architectures, as ComfyUI does) is not installed") from exc
    try:
        descriptor = ModelLoader().load_from_state_dict(state)
    except Exception as exc:  # spandrel raises its own UnsupportedModelError and plain errors
        raise RestorerFileError(f"restorer model {path.name}: not an upscale-model architecture spandrel knows ({exc})") from exc
    if not isinstance(descriptor, ImageModelDescriptor) or descriptor.purpose not in ("SR", "Restoration"):
        raise RestorerFileError(f"restorer model {path.name}: expected a super-resolution model, got "
                                f"{getattr(descriptor, 'purpose', type(descriptor).__name__)} ({descriptor.architecture.name})")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise RestorerFileError(f"restorer model {path.name}: expected RGB in and out, got {descriptor.input_channels} -> "
                                f"{descriptor.output_channels} channels")
    return LoadedRestorer(descriptor.model.eval(), int(descriptor.scale), path, descriptor.architecture.name, metadata)
