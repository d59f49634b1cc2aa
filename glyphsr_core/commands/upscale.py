"""`upscale`: GLYPH-SR without ComfyUI, on one image or many.

    python -m glyphsr_core upscale IMAGE -o OUT.png                 # stage 1 only: Text Restore, no downloads
    python -m glyphsr_core upscale FOLDER [MORE ...] -o OUT_FOLDER  # many: models load once, resumable, manifest
    python -m glyphsr_core upscale IMAGE -o OUT.png --scale 4 --base MODEL --scene-controlnet SCENE.safetensors
        --ts-controlnet TS.safetensors [--vlm DIR] [--steps 50 --cfg 7.5 --seed 0]
    python -m glyphsr_core upscale IMAGE -o OUT.png --base MODEL --scene-controlnet TILE.safetensors
        --shared-text-branch                         # text branch without training: scene weights on R

Stage 1 (the bundled Text Restore network) always runs; its result R is what OCR reads, so every
later stage gets the better words, and it is the Text Guard's fallback. With `--base` the diffusion
stages follow (diffusers). Flag defaults come from `glyphsr_core.defaults`, as do the nodes' widget
defaults. Writes the image and, beside it, `<OUT stem>_report.json` (OCR words, caption, prompts,
schedule, settings; `ocr_dropped`: the tokens `--word-filter` left out; the Text Guard's per-word
report under "guard").

Several inputs, a folder or a glob pattern make it a run over many images (glyphsr_core.batch;
docs/cli.md, "Folders, resume and many processes"): outputs mirror the input names as PNG, complete
ones are skipped, each image's outcome goes into the JSONL manifest, and under `accelerate launch`
the processes share the images.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Callable

from .. import defaults as d
from ..batch.inputs import add_batch_arguments
from ..diffusion import SCHEDULERS
from ..errors import InvalidInputError
from ..imagefiles import check_output_path, open_image_file, read_image, save_atomically
from ..restore.cli_support import add_restorer_arguments
from ..sampling.pingpong import SCHEDULES, PingPong
from ..text.text_input import parse_text_input
from .analyze import add_word_filter_argument
from .keep_words import MODES, add_keep_mode_argument, keep_and_report, report_path, write_report

logger = logging.getLogger(__name__)


def _sample_tile(value: str) -> int:
    number = int(value)
    if number != 0 and number < 64:
        raise argparse.ArgumentTypeError(f"--sample-tile must be 0 (off) or at least 64 px, got {value}")
    return number


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="+", metavar="IMAGE",
                        help="low-quality input image; or several, folders (searched recursively) or glob patterns")
    parser.add_argument("-o", "--out", type=Path, required=True,
                        help="output image path (.png, .jpg, .webp or .tif); with several images or a folder: the "
                             "output folder (PNG files)")
    add_batch_arguments(parser)
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
    _guidance_arguments(parser)
    _sampling_arguments(parser)


def _guidance_arguments(parser: argparse.ArgumentParser) -> None:
    """Caption, words, and the OCR word filter."""
    parser.add_argument("--vlm", type=Path, default=None, help="local VLM folder that writes the scene caption")
    parser.add_argument("--caption", default="", help="scene caption (skips the VLM)")
    parser.add_argument("--text", default=None,
                        help="the words in the image, one per line or a GLYPHSR_TEXT JSON file (skips OCR)")
    parser.add_argument("--min-confidence", type=float, default=d.MIN_CONFIDENCE,
                        help="drop OCR words read with lower confidence")
    parser.add_argument("--max-words", type=int, default=d.MAX_WORDS, help="most distinct words in the text prompt")
    add_word_filter_argument(parser)


def _sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """Ping-pong sampling, TS fusion, colour fix, devices, tiled sampling and the Text Guard."""
    parser.add_argument("--steps", type=int, default=d.STEPS, help=f"denoising steps (default {d.STEPS})")
    parser.add_argument("--cfg", type=float, default=d.CFG, help=f"CFG scale at the last step (default {d.CFG})")
    parser.add_argument("--cfg-start", type=float, default=d.CFG_START,
                        help=f"CFG at the first step, ramped to --cfg (0: off; default {d.CFG_START})")
    parser.add_argument("--text-cfg", type=float, default=None,
                        help="CFG of the text prompt pair at the last step (default: --cfg)")
    parser.add_argument("--schedule", choices=SCHEDULES, default=d.SCHEDULE,
                        help=f"ping-pong schedule (default {d.SCHEDULE})")
    parser.add_argument("--switch-at", type=float, default=d.SWITCH_AT, help="fraction of steps after which text only")
    parser.add_argument("--pattern", default=d.PATTERN, help="S/T pattern for --schedule pattern")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="euler", help="diffusers scheduler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--beta", type=float, default=None, help="text-branch weight (default: the bundle's)")
    parser.add_argument("--beta-scene", type=float, default=None,
                        help="mask fusion: --beta inside the text mask, this outside (default: one beta everywhere)")
    parser.add_argument("--mask-dilation", type=int, default=d.MASK_DILATION,
                        help="grow the text mask by this many output pixels")
    parser.add_argument("--strength", type=float, default=d.CONTROL_STRENGTH, help="ControlNet strength")
    parser.add_argument("--denoise", type=float, default=d.DENOISE,
                        help="< 1: start from the upscaled LQ image noised to this fraction (img2img); 1: from noise")
    parser.add_argument("--color-fix", choices=("wavelet", "adain", "none"), default=d.COLOR_FIX)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
                        help="weights and math: auto = fp16 on CUDA, fp32 on CPU (half precision is very slow on CPUs)")
    _tile_and_guard_arguments(parser)


def _tile_and_guard_arguments(parser: argparse.ArgumentParser) -> None:

    # --tile / --tile-overlap are Text Restore's (stage 1, input pixels); these tile the diffusion sampling
    parser.add_argument("--sample-tile", type=_sample_tile, default=None, metavar="PX",
                        help="sample in overlapping tiles of PX output pixels blended every step (seamless), each "
                             "tile prompted with its own words; 0: never; default: automatically when the image is "
                             "larger than twice the base's native size (SD 1.5: 1024, SDXL: 2048), said in the log")
    parser.add_argument("--sample-tile-overlap", type=int, default=d.SAMPLE_BLEND_OVERLAP, metavar="PX",
                        help="blend overlap: least output pixels shared by neighbouring sampling tiles, blended "
                             f"with smooth weights (default {d.SAMPLE_BLEND_OVERLAP})")
    parser.add_argument("--sample-tile-batch", type=int, default=d.SAMPLE_TILE_BATCH, metavar="N",
                        help="sampling tiles per model call (memory grows with N, not with the image; default 1)")
    parser.add_argument("--upscaler", type=Path, default=None, metavar="FILE",
                        help="any upscale model spandrel reads (.safetensors), instead of the diffusion stages: its "
                             "look, with Text Restore's words kept (Keep Words; --guard -1: its raw output)")
    parser.add_argument("--guard", type=int, default=None, metavar="ROUNDS",
                        help="Text Guard / Keep Words after --base: re-sample wrong words up to ROUNDS times, then "
                             f"repair them from Text Restore's letters (default {d.GUARD_ROUNDS}; 0: repair only; "
                             "-1: off). With --upscaler only 0 or -1 (nothing to re-sample with)")
    add_keep_mode_argument(parser, "--keep-mode")
    parser.add_argument("--guard-denoise", type=float, default=d.GUARD_DENOISE,
                        help=f"how much of a wrong word's box a guard round re-draws (default {d.GUARD_DENOISE})")
    parser.add_argument("--guard-dilation", type=int, default=d.GUARD_DILATION,
                        help="guard: grow word boxes by this many pixels")


def _read_text(value: str, width: int, height: int):
    path = Path(value)
    if path.is_file():
        value = path.read_text(encoding="utf-8")
    return parse_text_input(value, width, height)[0]


#: flags about the run over many images, not about how one image was made: not in its report
RUN_FLAGS = ("overwrite", "manifest")


def _settings(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
            if not k.startswith("_") and k not in RUN_FLAGS}


class _Models:
    """What one run loads, each once (glyphsr_core.batch.LoadedOnce): the restorer, the --upscaler, the
    VLM and the diffusion pipeline; `echo` prints an image's lines (one image) or logs them (many)."""

    def __init__(self, args: argparse.Namespace, many: bool = False) -> None:
        from ..batch.runner import LoadedOnce

        self.args, self.many, self.cache = args, many, LoadedOnce()
        self.echo: Callable[[str], None] = print
        self.inner: Callable[[int, int], None] | None = None  # progress inside one image (tiles, steps)
        self.device: str | None = None  # this process's device under a multi-process launcher

    def restorer(self) -> Any:
        from ..restore.cli_support import load_cli_restorer

        return self.cache.get(("Text Restore", str(self.args.restorer)),
                              lambda: self._on_device(load_cli_restorer(self.args.restorer)))

    def upscaler(self) -> Any:
        from ..restore import load_restorer

        return self.cache.get(("upscaler", str(self.args.upscaler)),
                              lambda: self._on_device(load_restorer(self.args.upscaler)))

    def _on_device(self, loaded: Any) -> Any:
        """Stage 1 and the upscaler run where `--device` (or this process's launcher rank) says; without
        either, on the CPU as before (tiles travel to the model's device and back)."""
        device = self.args.device or self.device
        if device is not None and device != "cpu":
            loaded.model.to(device)
        return loaded

    def pipeline(self, device: str, dtype: Any) -> Any:
        from ..diffusion.sampler import GlyphSRPipeline

        args = self.args
        return self.cache.get(("diffusion pipeline", str(args.base)), lambda: GlyphSRPipeline.from_files(
            args.base, args.scene_controlnet, args.ts_controlnet, base_config=args.base_config, device=device,
            dtype=dtype, shared_text=args.shared_text_branch))

    def caption(self, image: Any, device: str) -> str:
        """One image: the VLM loads, captions and is freed before the diffusion models load; many: it
        stays loaded for the whole run (its memory beside the pipeline's)."""
        from .. import method

        args = self.args
        if not self.many:
            return method.caption_with_vlm(args.vlm, image, device, args.precision)
        from ..imageops import to_pil_rgb
        from ..vlm import load_captioner

        def load() -> Any:
            captioner = load_captioner(args.vlm, dtype=args.precision, device=device)
            captioner.model.to(device)
            return captioner

        caption = self.cache.get(("VLM", str(args.vlm)), load).caption([to_pil_rgb(image)])[0]
        logger.info("caption: %s", caption)
        return caption

    def log_step(self, step: int, total: int, branch: str) -> None:
        logger.info("step %d/%d (%s)", step + 1, total, branch)
        if self.inner is not None:
            self.inner(step + 1, total)


def _run_restore_only(args: argparse.Namespace, opened, models: _Models) -> int:
    from .. import method

    restored, loaded = method.text_restore(opened.for_method(), args.scale, args.restorer, tile=args.tile,
                                           context_margin=args.tile_overlap, loaded=models.restorer(),
                                           on_tile=models.inner)
    saved = save_atomically(restored, args.out, opened)
    words, dropped = method.read_words(restored, args.min_confidence, args.word_filter)
    written = write_report(args.out, {
        "image": str(args.image), "output": str(args.out), "size": list(restored.size),
        "stage": "text restore only (no --base)", "restorer": str(loaded.path), "ocr": words.to_dict(),
        "ocr_dropped": [d.to_dict() for d in dropped], "settings": _settings(args),
        "files": {"input": opened.info.to_dict(), "output": saved.to_dict()}})
    models.echo(f"{restored.width}x{restored.height} -> {args.out} (Text Restore; add --base for the diffusion stages)")
    models.echo(f"words: {' | '.join(r.text for r in words.regions) or '(none)'}")
    models.echo(f"report: {written}")
    return len(words.regions)


def check_stage_flags(args: argparse.Namespace) -> None:
    """Flags that cannot act in the chosen stages are errors, never silently ignored."""
    if args.upscaler is not None and args.base is not None:
        raise InvalidInputError("--upscaler and --base are two ways to upscale: give one of them")
    if args.base is None and args.upscaler is None:
        if args.guard is not None:
            raise InvalidInputError("--guard acts on a diffusion result (--base) or an --upscaler's output; "
                                    "Text Restore alone is already the reference it would keep the words of")
        if args.keep_mode != "changed-words":
            raise InvalidInputError("--keep-mode needs --base or --upscaler (Text Restore alone has nothing to repair)")
    if args.upscaler is not None and args.guard is not None and args.guard > 0:
        raise InvalidInputError(f"--guard {args.guard} re-samples with the diffusion model, which --upscaler does not "
                                "load: use --guard 0 (repair from Text Restore, the default) or -1 (raw upscaler)")
    if args.guard is None:
        args.guard = d.GUARD_ROUNDS if args.base is not None else 0


def _run_upscaler(args: argparse.Namespace, opened, models: _Models) -> int:
    """Any upscaler's look, Text Restore's words: the upscaler, then Keep Words against stage 1."""
    from .. import method

    image = opened.for_method()
    upscaled, loaded = method.upscale_with_model(args.upscaler, image, args.scale, tile=args.tile,
                                                 context_margin=args.tile_overlap, loaded=models.upscaler())
    report = {"image": str(args.image), "output": str(args.out), "upscaler": str(args.upscaler),
              "architecture": loaded.architecture}
    if args.guard >= 0:
        upscaled, kept = keep_and_report(upscaled, image, args, "restore", args.guard_dilation,
                                         restorer=models.restorer(), echo=models.echo)
        report.update(kept)
    else:
        models.echo("keep words: off (--guard -1): the upscaler's raw output")
    saved = save_atomically(upscaled, args.out, opened)
    report["files"] = {"input": opened.info.to_dict(), "output": saved.to_dict()}
    models.echo(f"{upscaled.width}x{upscaled.height} -> {args.out} ({loaded.path.name})")
    models.echo(f"report: {write_report(args.out, report)}")
    return len(report["guidance"]["regions"]) if "guidance" in report else None


def _check_and_pingpong(args: argparse.Namespace):
    """Every option is checked before the VLM or any diffusion weights load; the ping-pong schedule."""
    from .. import method  # torch and the diffusion stack: not for --help

    method.check_options(scale=args.scale, steps=args.steps, beta=args.beta, beta_scene=args.beta_scene,
                         mask_dilation=args.mask_dilation, controlnet_scale=args.strength, denoise=args.denoise,
                         color_fix=args.color_fix, min_confidence=args.min_confidence, max_words=args.max_words,
                         scheduler=args.scheduler)
    return PingPong(schedule=args.schedule, switch_at=args.switch_at, pattern=args.pattern, cfg=args.cfg,
                    text_cfg=args.cfg if args.text_cfg is None else args.text_cfg, cfg_start=args.cfg_start)


def _run_diffusion(args: argparse.Namespace, opened, models: _Models) -> int:
    """Stage 1, then the diffusion stages and the Text Guard (--base)."""
    from .. import method

    pingpong = _check_and_pingpong(args)
    image = opened.for_method()
    text = _read_text(args.text, image.width, image.height) if args.text else None
    # stage 1 (or the user's own restored image): OCR's image (unless --ocr-source lq), the hint of a text
    # branch that sees the restored image, and the Text Guard's fallback
    restored = open_image_file(args.restored) if args.restored is not None else \
        method.text_restore(image, args.scale, args.restorer, tile=args.tile, context_margin=args.tile_overlap,
                            loaded=models.restorer(), on_tile=models.inner)[0]
    device, dtype = method.torch_settings(args.device or models.device, args.precision)
    caption = args.caption
    if args.vlm is not None and not caption:
        caption = models.caption(image, device)
    pipeline = models.pipeline(device, dtype)
    beta, beta_scene = args.beta, args.beta_scene
    if args.shared_text_branch:  # the restored image steers the letters, the scene branch everything else
        beta = 1.0 if beta is None else beta
        beta_scene = 0.0 if beta_scene is None else beta_scene
    result = method.upscale(
        pipeline, image, scale=args.scale, caption=caption, text=text,
        ocr_image=restored if args.ocr_source == "restored" else None, min_confidence=args.min_confidence,
        word_filter=args.word_filter, max_words=args.max_words, steps=args.steps, pingpong=pingpong, seed=args.seed,
        scheduler=args.scheduler, beta=beta, beta_scene=beta_scene, mask_dilation=args.mask_dilation,
        controlnet_scale=args.strength, color_fix=args.color_fix, denoise=args.denoise, restored=restored,
        callback=models.log_step, sample_tile=args.sample_tile, sample_blend_overlap=args.sample_tile_overlap,
        sample_tile_batch=args.sample_tile_batch)
    guard_report = method.text_guard(pipeline, image, result, rounds=args.guard, steps=args.steps, cfg=args.cfg,
                                     seed=args.seed, denoise=args.guard_denoise, dilation=args.guard_dilation,
                                     min_confidence=args.min_confidence, color_fix=args.color_fix, fallback=restored,
                                     mode=MODES[args.keep_mode])
    _save(args, result, guard_report, opened, models.echo)
    return len(result.ocr.regions)


def _one_image(args: argparse.Namespace, models: _Models) -> int:
    """Upscale `args.image` into `args.out`, image then report; returns the number of words read."""
    opened = read_image(args.image)
    if args.base is not None:
        return _run_diffusion(args, opened, models)
    if args.upscaler is not None:
        return _run_upscaler(args, opened, models)
    return _run_restore_only(args, opened, models)


def run(args: argparse.Namespace) -> int:
    check_stage_flags(args)
    if args.base is None and args.scale <= 0:
        raise InvalidInputError(f"--scale must be > 0, got {args.scale}")
    from ..batch.inputs import is_batch

    if is_batch(args.image, args.out):
        return _run_many(args)
    args.image = Path(args.image[0])
    check_output_path(args.out)  # an extension we cannot write fails before any work
    if args.base is not None:
        _check_and_pingpong(args)  # every option before the image is read or anything loads
    _one_image(args, _Models(args))
    return 0


def _run_many(args: argparse.Namespace) -> int:
    """Every input image into the output folder: models loaded once, complete outputs skipped, a manifest."""
    from ..batch.runner import Progress, plan_jobs, run_batch

    for flag, value in (("--restored", args.restored), ("--text", args.text)):
        if value is not None:
            raise InvalidInputError(f"{flag} belongs to one image: give one IMAGE with it, not {len(args.image)} "
                                    "inputs or a folder")
    if args.base is not None:
        _check_and_pingpong(args)
    models = _Models(args, many=True)
    models.echo = logger.debug

    def prepare(device: str | None, progress: Progress) -> None:
        """Before the first image: the run's device and every model it needs, loaded once."""
        from .. import method

        models.device, models.inner = device, progress.inner
        if args.restored is None:
            models.restorer()
        if args.upscaler is None or args.guard >= 0:
            from ..ocr import get_engine

            models.cache.get("OCR", get_engine)
        if args.upscaler is not None:
            models.upscaler()
        if args.base is not None:
            models.pipeline(*method.torch_settings(args.device or device, args.precision))

    def work(job) -> int:
        return _one_image(argparse.Namespace(**{**vars(args), "image": job.input, "out": job.output}), models)

    jobs = plan_jobs(args.image, args.out, lambda rel: args.out / rel.with_suffix(".png"))
    return run_batch(jobs, args.out, args.manifest, args.overwrite, lambda job: [job.output, report_path(job.output)],
                     work, prepare, models.cache)


def _save(args: argparse.Namespace, result, guard_report, opened, echo: Callable[[str], None] = print) -> None:
    saved = save_atomically(result.image, args.out, opened)
    prompts = result.prompts
    report = {
        "image": str(args.image), "output": str(args.out), "size": list(result.size),
        "ocr": result.ocr.to_dict(), "ocr_dropped": result.info.get("ocr_dropped", []), "caption": result.caption,
        "prompts": {"scene_positive": prompts.scene_positive, "scene_negative": prompts.scene_negative,
                    "text_positive": prompts.text_positive, "text_negative": prompts.text_negative},
        "words_dropped": list(prompts.words_dropped), "schedule": result.schedule,
        "tiles": result.info.get("tiles"), "settings": _settings(args),
        "files": {"input": opened.info.to_dict(), "output": saved.to_dict()},
    }
    if guard_report is not None:
        report["guard"] = guard_report.to_dict()
    written = write_report(args.out, report)
    echo(f"{result.image.width}x{result.image.height} -> {args.out}")
    echo(f"words: {' | '.join(r.text for r in result.ocr.regions) or '(none)'}; {prompts.summary()}")
    echo(f"schedule: {result.schedule}")
    if guard_report is not None:
        from ..guard.report import format_guard_report  # guard imports torch: not for --help

        echo(f"text guard: {format_guard_report([guard_report])}")
    echo(f"report: {written}")
