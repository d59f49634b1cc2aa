"""Validation during training: upscale held-out corpus samples with the current text branch and
score the OCR of the results against the ground-truth words (word P/R/F1 and the paper's rule)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from ..diffusion.sampler import GlyphSRPipeline
from ..imageops import pil_to_tensor, tensor_to_pil
from ..ocr import read_text
from ..text.glyphs import render_glyph_map
from ..text.metrics import micro_prf
from ..text.prompts import build_prompts
from ..tscontrolnet import takes_glyph

logger = logging.getLogger(__name__)


@torch.no_grad()
def validate(models: Any, text: Any, samples: Sequence[Any], config: Any, step: int, out_dir: Path) -> dict[str, Any]:
    """Run the GLYPH-SR pipeline on `samples` (LQ at validation.scale) and report OCR F1."""
    from PIL import Image


    v = config.validation
    scale = v.scale or config.data.scales[0]
    started = time.perf_counter()
    was_training = text.training
    text.eval()
    pipeline = GlyphSRPipeline(models.base, models.scene, text, text_hint=models.text_hint, beta=config.train.beta,
                               device=models.base.unet.device)
    pingpong = v.pingpong()
    resolution = config.data.resolution
    pairs, rows = [], []
    image_dir = out_dir / "validation" / f"step{step:06d}"
    for sample in samples:
        lq = Image.open(sample.lq_paths[scale]).convert("RGB")
        words = sample.ocr_result() if v.prompt_words == "gt" else read_text(lq)
        prompts = build_prompts("", words, max_words=config.train.max_words)
        control = pil_to_tensor(lq.resize((resolution, resolution), Image.Resampling.BICUBIC))
        glyph = pil_to_tensor(render_glyph_map(words, resolution, resolution)) if takes_glyph(models.text_hint) else None
        generator = torch.Generator(device="cpu").manual_seed(config.train.seed)
        image = pipeline.sample(control, pipeline.encode(prompts.scene_positive, prompts.scene_negative),
                                pipeline.encode(prompts.text_positive, prompts.text_negative), glyph=glyph,
                                steps=v.steps, pingpong=pingpong, scheduler=v.scheduler, generator=generator)
        output = tensor_to_pil(image[0].cpu())
        predicted = read_text(output).words
        truth = [w.text for w in sample.words]
        pairs.append((predicted, truth))
        rows.append({"id": sample.id, "predicted": predicted, "truth": truth})
        if v.save_images:
            image_dir.mkdir(parents=True, exist_ok=True)
            output.save(image_dir / f"{sample.id}.png")
    if was_training:
        text.train()
    counts = micro_prf(pairs)
    report = {"step": step, "validation": True, "scale": scale, "samples": len(samples),
              "precision": counts.precision, "recall": counts.recall, "f1": counts.f1,
              "paper_f1": counts.paper_f1, "seconds": time.perf_counter() - started, "per_sample": rows}
    logger.info("validation step %d: OCR word F1 %.3f (paper rule %.3f) on %d sample(s) at x%d",
                step, counts.f1, counts.paper_f1, len(samples), scale)
    print(f"validation step {step}: OCR word F1 {counts.f1:.3f} (glyphsr-paper {counts.paper_f1:.3f}), "
          f"{len(samples)} sample(s) at x{scale}")
    return report
