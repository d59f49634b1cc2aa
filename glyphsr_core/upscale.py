"""`upscale`: GLYPH-SR on one image without ComfyUI.

    python -m glyphsr_core upscale IMAGE -o OUT.png                 # stage 1 only: Text Restore, no downloads
    python -m glyphsr_core upscale IMAGE -o OUT.png --scale 4 --base MODEL --scene-controlnet SCENE.safetensors
        --ts-controlnet TS.safetensors [--vlm DIR] [--steps 50 --cfg 7.5 --seed 0]
    python -m glyphsr_core upscale IMAGE -o OUT.png --base MODEL --scene-controlnet TILE.safetensors
        --shared-text-branch                         # text branch without training: scene weights on R

Stage 1 (the bundled Text Restore network) always runs; its result R is what OCR reads, so every
later stage gets the better words. With `--base` the diffusion stages follow (diffusers). Writes the
image and, beside it, `<OUT stem>_report.json` (OCR words, caption, prompts, schedule, settings;
`ocr_dropped`: the tokens `--word-filter` left out).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    from .analyze import add_word_filter_argument
    from .diffusion import SCHEDULERS
    from .restore.cli_support import add_restorer_arguments
    from .schedule import SCHEDULES

    parser.add_argument("image", type=Path, help="low-quality input image")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output image path (.png)")
    parser.add_argument("--scale", type=float, default=4, help="upscale factor (default 4; 2, 4 or 8 without --base)")
    parser.add_argument("--base", type=Path, default=None,
                        help="base model: diffusers folder, or .safetensors checkpoint with --base-config "
                             "(without it: Text Restore only)")
    add_restorer_arguments(parser)
    parser.add_argument("--ocr-source", choices=("restored", "lq"), default="restored",
                        help="image OCR reads for the prompts, glyph map and mask: the Text Restore result "
                             "(default) or the plain low-quality input")
    parser.add_argument("--base-config", type=Path, default=None,
                        help="local diffusers folder (configs + tokenizers) for a single-file --base")
    parser.add_argument("--scene-controlnet", type=Path, default=None,
                        help="the scene (SR / tile) ControlNet file (not needed with a full --ts-controlnet bundle)")
    parser.add_argument("--ts-controlnet", type=Path, default=None,
                        help="TS-ControlNet bundle with the trained text branch (without it: scene branch only)")
    parser.add_argument("--shared-text-branch", action="store_true",
                        help="no trained text branch needed: the text branch runs the scene ControlNet's weights "
                             "(loaded once) on the restored image R (Text Restore's, or --restored); --beta defaults "
                             "to 1 inside the text mask and --beta-scene to 0 outside it")
    parser.add_argument("--restored", type=Path, default=None,
                        help="the restored image R of IMAGE, instead of running Text Restore: OCR reads it "
                             "(--ocr-source restored), and text branches that see 'restored' (the shared one) take it "
                             "as their hint")
    parser.add_argument("--vlm", type=Path, default=None, help="local VLM folder that writes the scene caption")
    parser.add_argument("--caption", default="", help="scene caption (skips the VLM)")
    parser.add_argument("--text", default=None,
                        help="the words in the image, one per line or a GLYPHSR_TEXT JSON file (skips OCR)")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps (authors: 50)")
    parser.add_argument("--cfg", type=float, default=7.5, help="CFG scale at the last step (authors: 7.5)")
    parser.add_argument("--cfg-start", type=float, default=4.0, help="CFG at the first step, ramped to --cfg (0: off)")
    parser.add_argument("--text-cfg", type=float, default=None, help="CFG of the text prompt pair (default: --cfg)")
    parser.add_argument("--schedule", choices=SCHEDULES, default="alternate_then_text", help="ping-pong schedule")
    parser.add_argument("--switch-at", type=float, default=0.9, help="fraction of steps after which text only")
    parser.add_argument("--pattern", default="ST", help="S/T pattern for --schedule pattern")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="euler", help="diffusers scheduler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--beta", type=float, default=None, help="text-branch weight (default: the bundle's)")
    parser.add_argument("--beta-scene", type=float, default=None,
                        help="mask fusion: --beta inside the text mask, this outside (default: one beta everywhere)")
    parser.add_argument("--mask-dilation", type=int, default=8, help="grow the text mask by this many output pixels")
    parser.add_argument("--strength", type=float, default=1.0, help="ControlNet strength")
    parser.add_argument("--denoise", type=float, default=1.0,
                        help="< 1: start from the upscaled LQ image noised to this fraction (img2img); 1: from noise")
    parser.add_argument("--color-fix", choices=("wavelet", "adain", "none"), default="wavelet")
    parser.add_argument("--min-confidence", type=float, default=0.5, help="drop OCR words read with lower confidence")
    parser.add_argument("--max-words", type=int, default=24, help="most distinct words in the text prompt")
    add_word_filter_argument(parser)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
                        help="weights and math: auto = fp16 on CUDA, fp32 on CPU (half precision is very slow on CPUs)")


def _read_text(value: str, width: int, height: int):
    from .textinput import parse_text_input

    path = Path(value)
    if path.is_file():
        value = path.read_text(encoding="utf-8")
    return parse_text_input(value, width, height)[0]


def _caption_with_vlm(folder: Path, image, device: str, precision: str) -> str:
    """Caption on the chosen device and precision, then free the VLM before the diffusion models load."""
    import gc

    import torch

    from .imageops import to_pil_rgb
    from .vlm import load_captioner

    captioner = load_captioner(folder, dtype=precision, device=device)
    captioner.model.to(device)
    caption = captioner.caption([to_pil_rgb(image)])[0]
    del captioner
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    logger.info("caption: %s", caption)
    return caption


def _restore_stage(args: argparse.Namespace, image):
    """Stage 1: the restored image R at the output scale (x8/x2 from the x4 net; other scales resized)."""
    from PIL import Image

    from .restore import restore_pil
    from .restore.cli_support import load_cli_restorer

    loaded = load_cli_restorer(args.restorer)
    net_scale = 8 if args.scale > 4 else (4 if args.scale > 2 else 2)
    restored = restore_pil(loaded.model, loaded.scale, image, net_scale, tile=args.tile, overlap=args.tile_overlap)
    target = (max(1, round(image.width * args.scale)), max(1, round(image.height * args.scale)))
    if restored.size != target:
        restored = restored.resize(target, Image.Resampling.LANCZOS)
    logger.info("Text Restore (%s): %dx%d -> %dx%d", loaded.path.name, image.width, image.height, *restored.size)
    return restored, loaded


def _run_restore_only(args: argparse.Namespace, image) -> int:
    from .ocr import filter_words, read_text

    restored, loaded = _restore_stage(args, image)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    restored.save(args.out)
    words, dropped = filter_words(read_text(restored, min_confidence=args.min_confidence), args.word_filter)
    report = {"image": str(args.image), "output": str(args.out), "size": list(restored.size),
              "stage": "text restore only (no --base)", "restorer": str(loaded.path), "ocr": words.to_dict(),
              "ocr_dropped": [d.to_dict() for d in dropped],
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")}}
    report_path = args.out.with_name(f"{args.out.stem}_report.json")
    report_path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"{restored.width}x{restored.height} -> {args.out} (Text Restore; add --base for the diffusion stages)")
    print(f"words: {words.text or '(none)'}")
    print(f"report: {report_path}")
    return 0


def run(args: argparse.Namespace) -> int:
    from .imageops import open_image_file

    image = open_image_file(args.image)
    if args.scale <= 0:
        raise ValueError(f"--scale must be > 0, got {args.scale}")
    if args.base is None:
        return _run_restore_only(args, image)
    from .pipeline import GlyphSRPipeline
    from .schedule import PingPong
    from .tscontrolnet import hint_image

    if args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    pingpong = PingPong(schedule=args.schedule, switch_at=args.switch_at, pattern=args.pattern, cfg=args.cfg,
                        text_cfg=args.cfg if args.text_cfg is None else args.text_cfg, cfg_start=args.cfg_start)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    precision = args.precision if args.precision != "auto" else ("fp16" if device.startswith("cuda") else "fp32")
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    caption = args.caption
    if args.vlm is not None and not caption:
        caption = _caption_with_vlm(args.vlm, image, device, args.precision)
    restored = open_image_file(args.restored) if args.restored is not None else None
    pipeline = GlyphSRPipeline.from_files(args.base, args.scene_controlnet, args.ts_controlnet,
                                          base_config=args.base_config, device=device, dtype=dtype,
                                          shared_text=args.shared_text_branch)
    text = _read_text(args.text, image.width, image.height) if args.text else None
    sees_restored = pipeline.text_controlnet is not None and hint_image(pipeline.text_hint) == "restored"
    if restored is None and (sees_restored or (text is None and args.ocr_source == "restored")):
        restored, _ = _restore_stage(args, image)

    beta, beta_scene = args.beta, args.beta_scene
    if args.shared_text_branch:  # the restored image steers the letters, the scene branch everything else
        beta = 1.0 if beta is None else beta
        beta_scene = 0.0 if beta_scene is None else beta_scene

    def progress(step: int, total: int, branch: str) -> None:
        logger.info("step %d/%d (%s)", step + 1, total, branch)

    result = pipeline.upscale(image, scale=args.scale, caption=caption, text=text,
                              ocr_image=restored if args.ocr_source == "restored" else None,
                              min_confidence=args.min_confidence, word_filter=args.word_filter,
                              max_words=args.max_words, steps=args.steps,
                              pingpong=pingpong, seed=args.seed, scheduler=args.scheduler, beta=beta,
                              beta_scene=beta_scene, mask_dilation=args.mask_dilation,
                              controlnet_scale=args.strength, color_fix=args.color_fix, denoise=args.denoise,
                              restored=restored, callback=progress)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(args.out)
    report = {
        "image": str(args.image), "output": str(args.out), "size": list(result.size),
        "ocr": result.ocr.to_dict(), "ocr_dropped": result.info.get("ocr_dropped", []), "caption": result.caption,
        "prompts": {"scene_positive": result.prompts.scene_positive, "scene_negative": result.prompts.scene_negative,
                    "text_positive": result.prompts.text_positive, "text_negative": result.prompts.text_negative},
        "words_dropped": list(result.prompts.words_dropped), "schedule": result.schedule,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")},
    }
    report_path = args.out.with_name(f"{args.out.stem}_report.json")
    report_path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"{result.image.width}x{result.image.height} -> {args.out}")
    print(f"words: {result.ocr.text or '(none)'}; {result.prompts.summary()}")
    print(f"schedule: {result.schedule}")
    print(f"report: {report_path}")
    return 0
