"""Pair up the loader's files into one TSBundle: a bundle, or a scene ControlNet plus a text branch.

Accepted combinations (first file, second file):
- full bundle, none
- text-only bundle, scene ControlNet
- scene ControlNet, text-only bundle (its beta/text_hint/base are used)
- scene ControlNet, text ControlNet (text_hint from the hint channels, base from the shapes)
- scene ControlNet, shared (`shared=True`): the text branch runs the scene weights on the restored image
"""

from __future__ import annotations

import os
from pathlib import Path

from .bundle import TSBundle, is_bundle, load_safetensors, shared_bundle, split_bundle, validate_bundle
from .errors import BundleError
from .branch_info import inspect_branch


def _open(path: str | os.PathLike, name: str) -> tuple[TSBundle | None, dict | None]:
    """(bundle, None) for a bundle file, (None, state dict) for a plain ControlNet file."""
    tensors, metadata = load_safetensors(path, name)
    label = f"{name} {Path(path).name}"
    if is_bundle(metadata):
        return split_bundle(tensors, metadata, label), None
    inspect_branch(tensors, label)
    return None, tensors


def assemble_branches(first: str | os.PathLike, second: str | os.PathLike | None = None,
                      shared: bool = False) -> TSBundle:
    """The validated TSBundle the two loader inputs describe; errors name the input at fault.

    `shared` (instead of a second file): the text branch is the scene ControlNet's own weights.
    """
    bundle, plain = _open(first, "control_net_name")
    if shared:
        if second is not None:
            raise BundleError("second_control_net: choose either a file or the shared text branch, not both")
        if bundle is not None:
            kind = "already holds a text branch" if bundle.scene is not None else "is a text-only bundle"
            raise BundleError(f"control_net_name {Path(first).name} {kind}; the shared text branch needs a plain "
                              f"scene ControlNet (e.g. a tile ControlNet) as control_net_name")
        result = shared_bundle(plain, base=inspect_branch(plain, "control_net_name").base)
        validate_bundle(result, "TS-ControlNet (control_net_name, shared text branch)")
        return result
    other_bundle = other_plain = None
    if second is not None:
        other_bundle, other_plain = _open(second, "second_control_net")

    if bundle is not None:
        if bundle.scene is not None:
            if second is not None:
                raise BundleError(f"control_net_name {Path(first).name} already holds both branches; "
                                  f"set second_control_net to None")
            return bundle
        if other_plain is None:
            raise BundleError(f"control_net_name {Path(first).name} is a text-only bundle: choose your scene "
                              f"ControlNet (a plain ControlNet file) as second_control_net")
        result = TSBundle(scene=other_plain, text=bundle.text, beta=bundle.beta, text_hint=bundle.text_hint,
                          base=bundle.base)
    elif other_bundle is not None:
        if other_bundle.scene is not None:
            raise BundleError(f"second_control_net {Path(second).name} is a full bundle; load it as "
                              f"control_net_name with second_control_net None")
        result = TSBundle(scene=plain, text=other_bundle.text, beta=other_bundle.beta,
                          text_hint=other_bundle.text_hint, base=other_bundle.base)
    elif other_plain is not None:
        scene_info = inspect_branch(plain, "control_net_name")
        text_info = inspect_branch(other_plain, "second_control_net")
        extra = text_info.hint_channels - scene_info.hint_channels
        result = TSBundle(scene=plain, text=other_plain, beta=0.5, text_hint="lq" if extra == 0 else "lq+glyph",
                          base=scene_info.base)
    else:
        raise BundleError(f"control_net_name {Path(first).name} is a plain ControlNet (the scene branch): "
                          f"choose the text branch (a bundle or ControlNet file) as second_control_net")
    validate_bundle(result, "TS-ControlNet (control_net_name + second_control_net)")
    return result
