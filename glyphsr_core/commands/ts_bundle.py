"""`ts-bundle`: write a TS-ControlNet bundle from a scene ControlNet and a text branch.

    python -m glyphsr_core ts-bundle --scene SCENE.safetensors --text TEXT.safetensors --beta 0.5 -o OUT.safetensors
    python -m glyphsr_core ts-bundle --scene SCENE.safetensors --init-text-from-scene --glyph-channel -o OUT.safetensors
    python -m glyphsr_core ts-bundle --scene SCENE.safetensors --text TEXT.safetensors --text-only -o TEXT_BUNDLE.safetensors
    python -m glyphsr_core ts-bundle --scene SCENE.safetensors --shared-text -o SHARED.safetensors

--shared-text writes the scene weights once with `text_weights=scene`: the text branch runs them on
the restored image (no training). --text-hint records which image a trained --text branch saw.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import InvalidInputError

logger = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scene", type=Path, help="scene-branch ControlNet (.safetensors, ldm or diffusers keys)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", type=Path, help="text-branch ControlNet (.safetensors), same architecture")
    source.add_argument("--init-text-from-scene", action="store_true",
                        help="make the text branch an exact copy of the scene branch (to train from)")
    source.add_argument("--shared-text", action="store_true",
                        help="no text weights: the text branch runs the scene weights on the restored image "
                             "(text_hint restored; works without training)")
    parser.add_argument("--text-hint", choices=("lq", "restored"), default="lq",
                        help="the image the --text branch was trained to see: the upscaled LQ (default) or the "
                             "restored image; '+glyph' is added when it has glyph channels")
    parser.add_argument("--glyph-channel", action="store_true",
                        help="with --init-text-from-scene: add a zero-initialised glyph-map hint channel "
                             "(text_hint lq+glyph); outputs stay identical to the scene branch")
    parser.add_argument("--beta", type=float, default=0.5, help="text-branch weight 0..1 (default 0.5)")
    parser.add_argument("--base", choices=("auto", "sd15", "sdxl", "other"), default="auto",
                        help="base model family (default: detected from the tensor shapes)")
    parser.add_argument("--text-only", action="store_true",
                        help="leave the scene tensors out (users pair it with their own scene ControlNet)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output bundle (.safetensors)")


def run(args: argparse.Namespace) -> int:
    from ..tscontrolnet import (LQ_CHANNELS, TSBundle, init_text_from_scene, inspect_branch, load_safetensors,
                               shared_bundle, validate_bundle, write_bundle)

    if args.glyph_channel and not args.init_text_from_scene:
        raise InvalidInputError("--glyph-channel only applies with --init-text-from-scene "
                         "(a --text file already has its own hint channels)")
    if (args.init_text_from_scene or args.shared_text) and args.scene is None:
        raise InvalidInputError(f"--{'shared-text' if args.shared_text else 'init-text-from-scene'} needs --scene")
    if args.shared_text and args.text_only:
        raise InvalidInputError("--shared-text keeps only the scene weights: --text-only would leave nothing")
    scene = None
    if args.scene is not None:
        scene, _ = load_safetensors(args.scene, "--scene")
        inspect_branch(scene, f"--scene {args.scene.name}")
    if args.shared_text:
        base = inspect_branch(scene).base if args.base == "auto" else args.base
        path = write_bundle(args.out, shared_bundle(scene, beta=args.beta, base=base))
        logger.info("wrote %s: scene weights shared by the text branch (text_hint restored), beta %s, base %s "
                    "(%.1f MiB)", path, args.beta, base, path.stat().st_size / 2**20)
        return 0
    if args.init_text_from_scene:
        text = init_text_from_scene(scene, glyph_channel=args.glyph_channel)
    else:
        text, _ = load_safetensors(args.text, "--text")
        inspect_branch(text, f"--text {args.text.name}")
    text_info = inspect_branch(text, "text branch")
    scene_channels = inspect_branch(scene, "scene branch").hint_channels if scene is not None else LQ_CHANNELS
    text_hint = args.text_hint if text_info.hint_channels == scene_channels else f"{args.text_hint}+glyph"
    base = inspect_branch(scene if scene is not None else text).base if args.base == "auto" else args.base
    bundle = TSBundle(scene=scene, text=text, beta=args.beta, text_hint=text_hint, base=base)
    validate_bundle(bundle, "bundle")  # checked with the scene branch even when it is left out
    if args.text_only:
        bundle.scene = None
    path = write_bundle(args.out, bundle)
    logger.info("wrote %s: %s, beta %s, text_hint %s, base %s (%.1f MiB)", path,
                "text-only" if bundle.scene is None else "scene + text", bundle.beta, text_hint, base,
                path.stat().st_size / 2**20)
    return 0
