"""The `train-restorer` loop: bicubic start, pixel + edge + recogniser losses, resumable state.

A long CPU run is stopped and resumed many times, so everything that decides the next step (weights,
optimiser moments, step, the sampler's random state, validation history) is in `state.pt`, written
atomically; loading it uses `weights_only=True`, so it cannot run code.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from .. import defaults
from ..errors import InvalidInputError
from ..restore.compact import CompactSR, blend_with_bicubic, init_as_bicubic
from ..restore.defects import phase_offsets
from ..restore.model_file import load_restorer, save_restorer
from ..restore.run import border_context
from ..tiling.context import run_tiled
from .restorer_config import CorpusSpec, RestorerTrainConfig
from .restorer_data import Sampler, load_train_images
from ..data.corpus import CorpusConfig, load_corpus, make_corpus
from ..data.corpus_fonts import discover_fonts
from ..ocr import read_text
from ..restore.run import restore_pil
from ..text.metrics import word_counts, WordCounts
from .text_prior import ctc_word_loss, load_recogniser

log = logging.getLogger(__name__)
STATE = "state.pt"
FINAL = "glyphsr_text_restore_x4.safetensors"


@dataclass
class TrainResult:
    step: int
    validation: list[dict[str, Any]] = field(default_factory=list)
    weights: Path | None = None
    seconds: float = 0.0


def ensure_corpus(spec: CorpusSpec, size: int, fonts: Path | None) -> None:
    """Make the corpus with `make-corpus` settings unless a complete one is already there."""
    if (spec.out / "metadata.jsonl").is_file():
        return
    log.info("making corpus %s (%d samples, seed %d, %s)", spec.out, spec.n, spec.seed, spec.degradation)
    font_list, _ = discover_fonts(fonts, system=False)
    config = CorpusConfig(out=spec.out, size=size, scales=(4, 8), seed=spec.seed, mode=spec.degradation,
                          fonts=tuple(font_list))
    config.validate()
    make_corpus(config, spec.n, workers=max(2, min(8, (os.cpu_count() or 2) - 1)))


def edge_loss(sr: torch.Tensor, hq: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between horizontal and vertical differences: keeps strokes where they are, sharp."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    if weight is None:
        return (dx(sr) - dx(hq)).abs().mean() + (dy(sr) - dy(hq)).abs().mean()
    return ((dx(sr) - dx(hq)).abs() * weight[..., :, 1:]).mean() + ((dy(sr) - dy(hq)).abs() * weight[..., 1:, :]).mean()


def _inner(tensor: torch.Tensor, crop: int) -> torch.Tensor:
    return tensor[..., crop:tensor.shape[-2] - crop, crop:tensor.shape[-1] - crop] if crop else tensor


def grid_loss(sr: torch.Tensor, reference: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """Mean |per-phase high-pass offset| of `sr` beyond `reference`'s, per patch and channel: a net whose
    sub-pixel phases sit at different levels draws a period-`scale` grid over flat areas; bicubic does not."""

    return (phase_offsets(sr, scale) - phase_offsets(reference, scale)).abs().mean()


def pixel_loss(sr: torch.Tensor, hq: torch.Tensor, lr: torch.Tensor, mask: torch.Tensor, anchor: CompactSR | None,
               text_weight: float, crop: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted L1 and the weight map: toward HQ inside the words (grown by 4 px), outside them toward
    bicubic when an `anchor` (the bicubic-initialised net) is given.

    Corpus backgrounds carry pixel noise no network can predict; chasing it with L1 printed a faint grid
    over flat areas that OCR reads worse than bicubic's blur (measured: x4 F1 0.68 vs 0.84 at 500 steps).
    Anchoring the background leaves the capacity for letters. `crop` output pixels on each side (the
    patch's extra context) are left out.
    """
    grown = _inner(F.max_pool2d(mask, 9, stride=1, padding=4), crop)
    sr, hq = _inner(sr, crop), _inner(hq, crop)
    if anchor is None:
        weight = 1.0 + (text_weight - 1.0) * grown
        return ((sr - hq).abs() * weight).mean(), weight
    with torch.no_grad():
        base = _inner(anchor(lr), crop)
    inside = (sr - hq).abs() * grown * text_weight
    outside = (sr - base).abs() * (1.0 - grown)
    return (inside + outside).mean(), grown


def _save_state(path: Path, model: CompactSR, ema: CompactSR | None, optimiser: torch.optim.Optimizer, step: int,
                rng: np.random.Generator, history: list[dict[str, Any]]) -> None:
    partial = path.with_name(path.name + ".partial")
    state = {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
             "rng": json.dumps(rng.bit_generator.state), "history": json.dumps(history)}
    if ema is not None:
        state["ema"] = ema.state_dict()
    torch.save(state, partial)
    partial.replace(path)


def learning_rate(config: RestorerTrainConfig, step: int) -> float:
    """The rate for `step` (0-based), a pure function of the step so a resumed run follows the same curve."""
    if config.lr_schedule == "constant":
        return config.lr
    progress = step / max(config.iterations - 1, 1)
    return config.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


@torch.no_grad()
def update_ema(ema: CompactSR, model: CompactSR, decay: float) -> None:
    """Exponential moving average of the weights: the averaged net is steadier than any single step's."""
    for averaged, current in zip(ema.parameters(), model.parameters()):
        averaged.lerp_(current, 1.0 - decay)


def validate(model: CompactSR, images: list[Any], scales: tuple[int, ...] = (4, 8)) -> dict[str, float]:
    """OCR word F1 of the restored held-out images, per scale (the figure the run is judged by)."""
    from PIL import Image

    model.eval()
    scores = {}
    for scale in scales:
        total = WordCounts()
        for sample in images:
            lq = Image.open(sample.lq_paths[scale]).convert("RGB")
            out = restore_pil(model, model.scale, lq, scale, tile=1024,
                              context_margin=defaults.RESTORE_CONTEXT_MARGIN)
            total = total + word_counts(list(read_text(out).words), [w.text for w in sample.words])
        scores[f"f1_x{scale}"] = round(total.f1, 4)
    model.train()
    return scores


def teacher_targets(images: list[Any], teacher_path: Path, cache: Path, device: torch.device) -> None:
    """Give every training image its teacher's output per input scale (what the student learns instead of HQ).

    The teacher runs on the whole net input with edge-replicated borders, as `restore` runs it, so the
    targets carry no frame and no tile seams. Outputs are cached as PNGs in `cache` (a resumed or
    repeated run reads them back); 8-bit rounding is below what the losses resolve.
    """
    from PIL import Image


    loaded = load_restorer(teacher_path)
    teacher = loaded.model.eval().to(device)  # a blended file loads as its two halves: a third of the time
    border = border_context(loaded.model, 32)
    cache.mkdir(parents=True, exist_ok=True)
    made = 0
    for index, image in enumerate(images):
        image.targets = {}
        for scale, lq in image.inputs.items():
            path = cache / f"{index:05d}_x{scale}.png"
            if path.is_file():
                image.targets[scale] = np.asarray(Image.open(path).convert("RGB"))
                continue
            x = torch.from_numpy(np.array(lq)).permute(2, 0, 1)[None].float().div(255.0).to(device)
            out = run_tiled(teacher, x, loaded.scale, 4096, 32, border=border)[0]
            array = np.round(out.permute(1, 2, 0).cpu().numpy() * 255.0).astype(np.uint8)
            partial = path.with_name(path.name + ".partial")
            Image.fromarray(array).save(partial, format="PNG")
            partial.replace(path)  # a run stopped mid-write leaves no truncated target behind
            image.targets[scale] = array
            made += 1
        if made and index % 50 == 0:
            log.info("teacher targets: %d / %d images", index + 1, len(images))


REFIT_SMOOTH = (96, 40)   # smooth synthetic images for the head refit: count, side (LR px)
REFIT_TEXT = 24           # training images, evenly spaced (each at its x4 and x8 inputs), whose own output the refit keeps


def refit_on_training_images(model: CompactSR, images: list[Any], smooth_weight: float, seed: int) -> CompactSR:
    """`head_fit.refit_head` on seeded smooth images and the first training images (whole, every input scale)."""
    from .head_fit import refit_head, smooth_images  # head_fit is only needed after training

    generator = torch.Generator().manual_seed(seed)
    smooth = smooth_images(REFIT_SMOOTH[0], REFIT_SMOOTH[1], generator)
    text = torch.stack([torch.from_numpy(np.array(lq)).permute(2, 0, 1).float().div(255.0)
                        for image in images[:: max(1, len(images) // REFIT_TEXT)][:REFIT_TEXT]
                        for _, lq in sorted(image.inputs.items())])
    log.info("refitting the head: %d smooth images (weight %.1f), %d text inputs", len(smooth), smooth_weight, len(text))
    return refit_head(model.eval(), smooth, text, smooth_weight=smooth_weight, generator=generator)


def training_device(name: str) -> torch.device:
    """The device a run trains on: "auto" takes CUDA when torch sees one; "cuda" without one is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("config device 'cuda': torch sees no CUDA device here; use 'cpu' or 'auto'")
    return torch.device(name)


@dataclass
class _RestorerRun:
    """Everything one Text Restore training run holds between steps."""

    config: RestorerTrainConfig
    device: torch.device
    model: CompactSR
    anchor: CompactSR | None
    ema: CompactSR | None
    optimiser: Any
    rng: Any
    sampler: Sampler
    recogniser: Any
    held_out: list
    step: int = 0
    history: list = field(default_factory=list)

    @property
    def judged(self) -> CompactSR:
        """The net validation scores and saves: the weight average when there is one."""
        return self.ema if self.ema is not None else self.model

    def save_state(self) -> None:
        _save_state(self.config.output / STATE, self.model, self.ema, self.optimiser, self.step, self.rng,
                    self.history)


def train_restorer(config: RestorerTrainConfig, *, resume: bool = False, max_minutes: float | None = None,
                   progress: Callable[[int, int, dict[str, float]], None] | None = None) -> TrainResult:
    """Train (or resume) and write `FINAL` into the output folder when the last step is done."""
    start_time = time.monotonic()
    run = _setup_restorer(config, resume)
    metadata = {"train_config": {k: str(v) for k, v in vars(config).items()}}
    if config.teacher is not None:
        metadata["teacher_sha256"] = hashlib.sha256(config.teacher.read_bytes()).hexdigest()
    log_file = (config.output / "log.jsonl").open("a", encoding="utf-8")
    run.model.train()
    window: list[float] = []
    tick = time.monotonic()
    stop = config.last_step or config.iterations
    try:
        while run.step < stop:
            loss, terms = _restorer_step(run)
            window.append(loss)
            if progress is not None:
                progress(run.step, config.iterations, {"loss": float(np.mean(window[-50:])), **terms})
            if run.step % config.checkpoint_every == 0 or run.step == stop:
                run.save_state()
                elapsed = time.monotonic() - tick
                log_file.write(json.dumps({"step": run.step, "loss": float(np.mean(window)), **terms,
                                           "steps_per_s": round(len(window) / max(elapsed, 1e-9), 3)}) + "\n")
                log_file.flush()
                window, tick = [], time.monotonic()
            if run.step % config.validate_every == 0 or run.step == stop:
                _validate_and_save(run, log_file, metadata)
            if max_minutes is not None and time.monotonic() - start_time > max_minutes * 60:
                run.save_state()
                log.info("stopped after %.1f min at step %d; resume with --resume", max_minutes, run.step)
                return TrainResult(run.step, run.history, None, time.monotonic() - start_time)
    except KeyboardInterrupt:
        run.save_state()
        log.info("interrupted at step %d; state saved, resume with --resume", run.step)
        raise
    finally:
        log_file.close()
    final = _save_final(run, metadata)
    return TrainResult(run.step, run.history, final, time.monotonic() - start_time)


def _setup_restorer(config: RestorerTrainConfig, resume: bool) -> _RestorerRun:
    """Corpora (made when missing), the recogniser for the word loss, the nets, optimiser, resume state."""
    config.output.mkdir(parents=True, exist_ok=True)
    for spec in (*config.corpora, config.validation):
        ensure_corpus(spec, config.size, config.fonts)
    device = training_device(config.device)
    recogniser = load_recogniser() if config.ctc_weight > 0 and config.words > 0 else None
    if recogniser is not None:
        recogniser.module.to(device)
    encode = recogniser.encode if recogniser else (lambda text: [1] * len(text))
    train_images = load_train_images(config.corpora, encode)
    if config.teacher is not None:
        teacher_targets(train_images, config.teacher, config.output / "teacher_targets", device)
    sampler = Sampler(train_images, config.x8_fraction)
    held_out = load_corpus(config.validation.out)[: config.validate_images]
    torch.manual_seed(config.seed)
    model = CompactSR(config.num_feat, config.num_conv, scale=4)
    init_as_bicubic(model, torch.Generator().manual_seed(config.seed))
    model.to(device)
    anchor = None
    if config.background == "bicubic":
        anchor = CompactSR(config.num_feat, config.num_conv, scale=4)
        init_as_bicubic(anchor, torch.Generator().manual_seed(config.seed))
        anchor.to(device).eval().requires_grad_(False)
    ema = copy.deepcopy(model).requires_grad_(False) if config.ema > 0 else None
    run = _RestorerRun(config, device, model, anchor, ema, torch.optim.Adam(model.parameters(), lr=config.lr),
                       np.random.default_rng(config.seed), sampler, recogniser, held_out)
    state_path = config.output / STATE
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state.get("ema", state["model"]))
        run.optimiser.load_state_dict(state["optimiser"])
        run.rng.bit_generator.state = json.loads(state["rng"])
        run.step, run.history = int(state["step"]), json.loads(state["history"])
        log.info("resumed %s at step %d", state_path, run.step)
    elif resume:
        log.info("no %s yet: starting from the beginning", state_path)
    return run


def _restorer_step(run: _RestorerRun) -> tuple[float, dict[str, float]]:
    """One optimiser step on a batch of patches (+ word crops every `word_every` steps): (loss, terms)."""
    config, device, model = run.config, run.device, run.model
    size = config.patch_size + 2 * config.context  # context: run by the net, left out of the losses
    lr, hq, mask = (t.to(device) for t in run.sampler.patches(run.rng, config.patches, size))
    sr = model(lr)
    crop = config.context * model.scale
    pixel, weight = pixel_loss(sr, hq, lr, mask, run.anchor, config.text_mask_weight, crop)
    edge = edge_loss(_inner(sr, crop), _inner(hq, crop), weight if run.anchor is not None else None)
    loss = pixel + config.edge_weight * edge
    terms = {"pixel": pixel.item(), "edge": edge.item()}
    if config.grid_weight > 0:
        with torch.no_grad():
            reference = _inner(run.anchor(lr), crop) if run.anchor is not None else _inner(hq, crop)
        grid = grid_loss(_inner(sr, crop), reference, model.scale)
        loss = loss + config.grid_weight * grid
        terms["grid"] = grid.item()
    crops = [c.to(device) for c in run.sampler.words(run.rng, config.words)] if run.step % config.word_every == 0 else []
    if crops:
        outputs = [model(c.lr[None])[0] for c in crops]
        word_pixel = torch.stack([(o - c.hq).abs().mean() for o, c in zip(outputs, crops)]).mean()
        loss = loss + word_pixel
        terms["word_pixel"] = word_pixel.item()
        if run.recogniser is not None:
            words = [o[:, c.box[1]:c.box[3], c.box[0]:c.box[2]] for o, c in zip(outputs, crops)]
            ctc = ctc_word_loss(run.recogniser, words, [c.ids for c in crops])
            loss = loss + config.ctc_weight * ctc
            terms["ctc"] = ctc.item()
    run.optimiser.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    for group in run.optimiser.param_groups:
        group["lr"] = learning_rate(config, run.step)
    run.optimiser.step()
    if run.ema is not None:
        update_ema(run.ema, model, config.ema)
    run.step += 1
    return loss.item(), terms


def _validate_and_save(run: _RestorerRun, log_file: Any, metadata: dict) -> None:
    scores = validate(run.judged, run.held_out)
    run.history.append({"step": run.step, **scores})
    log_file.write(json.dumps({"step": run.step, "validation": scores}) + "\n")
    log_file.flush()
    save_restorer(run.judged, run.config.output / f"step_{run.step:06d}.safetensors",
                  {**metadata, "step": run.step, **scores})
    run.save_state()
    log.info("step %d: validation %s", run.step, scores)


def _save_final(run: _RestorerRun, metadata: dict) -> Path:
    """The shipped net (the judged one, optionally blended with bicubic) as `FINAL`, with its scores."""
    config, history = run.config, run.history
    trained = run.judged.cpu()
    refit = config.head_refit > 0
    if refit:
        trained = refit_on_training_images(trained, run.sampler.images, config.head_refit, config.seed)
    shipped = blend_with_bicubic(trained, config.blend_with_bicubic)
    final_scores = (validate(shipped, run.held_out) if shipped is not trained or refit
                    else history[-1] if history else {})
    final = save_restorer(shipped, config.output / FINAL, {**metadata, "step": run.step, "validation": history,
                                                          "blend_with_bicubic": config.blend_with_bicubic,
                                                          "head_refit": config.head_refit,
                                                          "final_validation": {k: v for k, v in final_scores.items()
                                                                               if k != "step"}})
    log.info("wrote %s (blend %.2f with bicubic): validation %s", final, config.blend_with_bicubic, final_scores)
    return final
