"""The text-branch training loop (diffusers + accelerate).

Per step: HQ image -> VAE latents (frozen) -> noised at a random DDPM timestep; the frozen scene
ControlNet and the trainable text ControlNet both see the upscaled LQ image (the text branch also
the glyph map when it has the extra channel); their residuals are fused `(1 - beta) * scene +
beta * text` with `glyphsr_core.sampling.fusion`; the frozen UNet predicts the noise (or v) from the fused
residuals and the ground-truth-word text prompt; loss = MSE, optionally up-weighted inside text
masks. Only the text branch receives gradients. Checkpoints are accelerate states (resume with
`train.resume_from_checkpoint`); TS-ControlNet bundles (text-only and full) are written with
`glyphsr_core.tscontrolnet.write_bundle`, in the scene ControlNet file's own key layout.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data.corpus import load_corpus
from ..diffusion import residuals as res
from ..diffusion.models import (BaseModel, controlnet_from_state_dict, controlnet_state_dict, encode_images,
                                load_base, load_controlnet, read_safetensors)
from ..diffusion.original_layout import diffusers_to_original
from ..diffusion.tiny import build_tiny_base, build_tiny_controlnet
from ..errors import InputNotFoundError
from ..tscontrolnet import TSBundle, hint_image, init_text_from_scene, read_bundle, write_bundle
from .text_branch_config import TrainConfig, config_to_dict
from .text_branch_data import CorpusDataset, StepBatchSampler, collate, split_corpus
from .text_branch_validate import validate

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"


@dataclass
class Models:
    base: BaseModel
    scene: Any  # ControlNetModel, frozen
    text: Any  # ControlNetModel, trainable
    scene_file_sd: dict | None = None  # the scene ControlNet as stored in its file (for the full bundle)
    text_hint: str = "lq"


@dataclass
class TrainResult:
    step: int
    losses: list[float] = field(default_factory=list)
    bundles: dict[str, Path] = field(default_factory=dict)
    validation: list[dict[str, Any]] = field(default_factory=list)
    samples_per_second: float = 0.0
    peak_memory_mb: float = 0.0


# --------------------------------------------------------------------------------------------------
# models

def load_models(config: TrainConfig) -> Models:
    """Base + scene ControlNet (from files or tiny random ones) and the text branch initialised from them."""
    m = config.model
    scene_file_sd = None
    if m.tiny:
        base = build_tiny_base(m.tiny, seed=config.train.seed)
        scene = build_tiny_controlnet(base.unet, seed=config.train.seed + 7)
    else:
        base = load_base(m.base, config=m.base_config)
        scene_path = Path(m.scene_controlnet)
        if scene_path.is_file():
            scene_file_sd, _ = read_safetensors(scene_path)
            scene = controlnet_from_state_dict(scene_file_sd, base.unet, name=f"scene ControlNet {scene_path}")
        else:
            scene = load_controlnet(scene_path, base.unet, what="scene ControlNet")
    base.freeze()
    scene.requires_grad_(False).eval()
    if m.init_text_from:
        bundle = read_bundle(m.init_text_from)
        if hint_image(bundle.text_hint) != "lq":  # training feeds the LQ image: the bundle must record that
            raise ValueError(f"init_text_from {m.init_text_from}: its text branch sees the restored image "
                             f"(text_hint {bundle.text_hint!r}); training feeds the LQ image, so start from an "
                             f"'lq' bundle or from the scene ControlNet")
        text_sd, text_hint = bundle.text, bundle.text_hint
    else:
        text_sd = init_text_from_scene(controlnet_state_dict(scene), glyph_channel=m.glyph_channel)
        text_hint = "lq+glyph" if m.glyph_channel else "lq"
    text = controlnet_from_state_dict(text_sd, base.unet, name="text branch")
    text.requires_grad_(True).train()
    return Models(base=base, scene=scene, text=text, scene_file_sd=scene_file_sd, text_hint=text_hint)


def prompt_encoder(base: BaseModel, scene: Any):
    """A function prompts -> (token embeddings, SDXL pooled embeddings or None), via diffusers' encode_prompt."""
    pipe = base.controlnet_pipeline(scene)
    # diffusers warns on every batch whose prompt CLIP truncates; build_prompts already caps the words
    for name in ("diffusers.pipelines.controlnet.pipeline_controlnet", "diffusers.pipelines.controlnet.pipeline_controlnet_sd_xl"):
        logging.getLogger(name).setLevel(logging.ERROR)

    @torch.no_grad()
    def encode(prompts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        if base.family == "sdxl":
            embeds, _, pooled, _ = pipe.encode_prompt(prompt=prompts, device=device, num_images_per_prompt=1,
                                                      do_classifier_free_guidance=False)
            return embeds, pooled
        embeds, _ = pipe.encode_prompt(prompts, device, 1, False)
        return embeds, None

    return encode


def text_hint_input(control: torch.Tensor, glyph: torch.Tensor, text_controlnet: Any) -> torch.Tensor:
    extra = int(text_controlnet.config.conditioning_channels) - control.shape[1]
    if extra <= 0:
        return control
    return torch.cat([control, glyph.expand(-1, extra, -1, -1)], dim=1)


def training_loss(models: Models, text: Any, batch: dict[str, Any], noise_scheduler: Any, encode: Any, *,
                  beta: float, prediction_type: str, text_mask_weight: float, weight_dtype: torch.dtype,
                  device: torch.device) -> torch.Tensor:
    """The diffusion loss of one batch; gradients reach only `text` (the text branch)."""
    base = models.base
    with torch.no_grad():
        latents = encode_images(base.vae, batch["hq"].to(device, weight_dtype)).float()
        embeds, pooled = encode(batch["prompt"], device)
    noise = torch.randn_like(latents)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],),
                              device=device).long()
    noisy = noise_scheduler.add_noise(latents, noise, timesteps).to(weight_dtype)
    added = None
    if base.family == "sdxl":
        height, width = batch["hq"].shape[-2:]
        time_ids = torch.tensor([[height, width, 0, 0, height, width]], device=device, dtype=weight_dtype)
        added = {"text_embeds": pooled.to(weight_dtype), "time_ids": time_ids.repeat(latents.shape[0], 1)}
    embeds = embeds.to(weight_dtype)
    control = batch["control"].to(device, weight_dtype)
    with torch.no_grad():
        scene_down, scene_mid = models.scene(noisy, timesteps, encoder_hidden_states=embeds, controlnet_cond=control,
                                             added_cond_kwargs=added, return_dict=False)
    text_cond = text_hint_input(control, batch["glyph"].to(device, weight_dtype), models.text)  # unwrapped: .config
    text_down, text_mid = text(noisy, timesteps, encoder_hidden_states=embeds, controlnet_cond=text_cond,
                               added_cond_kwargs=added, return_dict=False)
    down, mid = res.fuse((tuple(scene_down), scene_mid), (tuple(text_down), text_mid), beta)
    pred = base.unet(noisy, timesteps, encoder_hidden_states=embeds,
                     down_block_additional_residuals=[d.to(weight_dtype) for d in down],
                     mid_block_additional_residual=mid.to(weight_dtype), added_cond_kwargs=added,
                     return_dict=False)[0].float()
    if prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    error = (pred - target) ** 2
    if text_mask_weight != 1.0:
        mask = F.interpolate(batch["mask"].to(device, torch.float32), size=latents.shape[-2:], mode="area")
        weights = 1.0 + (text_mask_weight - 1.0) * mask
        return (error * weights).sum() / (weights.sum() * error.shape[1])
    return error.mean()


# --------------------------------------------------------------------------------------------------
# bundles

def text_branch_for_bundle(text_sd: dict, scene_file_sd: dict | None, unet: Any) -> dict:
    """The trained text branch in the scene file's own layout and precision (both branches of a bundle match)."""
    if scene_file_sd is None:
        return text_sd
    if "controlnet_cond_embedding.conv_in.weight" not in scene_file_sd:
        text_sd = diffusers_to_original(text_sd, scene_file_sd, unet)
    dtype = next(t.dtype for t in scene_file_sd.values() if t.is_floating_point())  # e.g. fp16 files stay fp16
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in text_sd.items()}


def save_bundles(models: Models, text: Any, out_dir: Path, beta: float, tag: str) -> dict[str, Path]:
    """Write `ts_text_<tag>.safetensors` (text branch only) and `ts_full_<tag>.safetensors` (both)."""
    text_sd = text_branch_for_bundle(controlnet_state_dict(text), models.scene_file_sd, models.base.unet)
    scene_sd = models.scene_file_sd if models.scene_file_sd is not None else controlnet_state_dict(models.scene)
    family = models.base.family
    base = family if _is_real_size(models.base) else "other"
    paths = {
        "text": write_bundle(out_dir / f"ts_text_{tag}.safetensors",
                             TSBundle(scene=None, text=text_sd, beta=beta, text_hint=models.text_hint, base=base)),
        "full": write_bundle(out_dir / f"ts_full_{tag}.safetensors",
                             TSBundle(scene=scene_sd, text=text_sd, beta=beta, text_hint=models.text_hint, base=base)),
    }
    return paths


def _is_real_size(base: BaseModel) -> bool:
    width = int(base.unet.config.cross_attention_dim)
    return (base.family == "sd15" and width == 768) or (base.family == "sdxl" and width == 2048)


# --------------------------------------------------------------------------------------------------
# checkpoints

def find_checkpoint(out_dir: Path, which: str) -> Path:
    if which != "latest":
        path = Path(which)
        if not (path / STATE_FILE).is_file():
            raise InputNotFoundError(f"{path} is not a training checkpoint (no {STATE_FILE})")
        return path
    found = sorted((out_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    found = [p for p in found if (p / STATE_FILE).is_file()]
    if not found:
        raise InputNotFoundError(f"resume_from_checkpoint: latest, but {out_dir / 'checkpoints'} holds no checkpoint")
    return found[-1]


def _prune_checkpoints(out_dir: Path, keep: int | None) -> None:
    if not keep:
        return
    found = sorted((out_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    for old in found[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# the loop

def _weight_dtype(mixed_precision: str) -> torch.dtype:
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision, torch.float32)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    except ImportError:  # pragma: no cover - non-POSIX
        return float("nan")


@dataclass
class _Run:
    """Everything one training run holds between steps."""

    config: TrainConfig
    accelerator: Any
    models: Models
    text: Any  # the prepared (wrapped) text branch
    params: list
    optimizer: Any
    lr_scheduler: Any
    noise_scheduler: Any
    prediction_type: str
    encode: Any
    weight_dtype: torch.dtype
    held_out: list
    out_dir: Path
    step: int = 0
    checkpoint: Path | None = None


def train(config: TrainConfig, models: Models | None = None, accelerator: Any = None) -> TrainResult:
    """Run (or resume) training as configured; returns the losses, bundles and validation results."""
    run, batches = _setup(config, models, accelerator)
    t, accelerator = config.train, run.accelerator
    result = TrainResult(step=run.step)
    started, seen, window = time.perf_counter(), 0, []
    run.text.train()
    for batch in batches:
        loss = _optimise(run, batch)
        seen += batch["hq"].shape[0] * accelerator.num_processes
        window.append(float(loss.detach()))
        if not accelerator.sync_gradients:
            continue
        run.step += 1
        result.losses.append(sum(window) / len(window))
        window.clear()
        _after_step(run, result, seen / max(time.perf_counter() - started, 1e-9))
        if run.step >= t.max_steps:
            break
    return _finish(run, result, seen / max(time.perf_counter() - started, 1e-9))


def _setup(config: TrainConfig, models: Models | None, accelerator: Any) -> tuple[_Run, Any]:
    """Accelerator, models on their devices, optimiser and LR schedule, resume state; the batches."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler

    t = config.train
    out_dir = Path(t.output_dir)
    accelerator = accelerator or Accelerator(
        gradient_accumulation_steps=t.gradient_accumulation_steps, mixed_precision=t.mixed_precision,
        project_config=ProjectConfiguration(project_dir=str(out_dir)))
    set_seed(t.seed)
    models = models or load_models(config)
    weight_dtype = _place_models(models, t, accelerator.device)
    noise_scheduler = DDPMScheduler.from_config(models.base.scheduler.config)
    train_samples, held_out = split_corpus(load_corpus(config.data.corpus), config.data.validation_samples)
    dataset = CorpusDataset(train_samples, config.data.scales, config.data.resolution, t.prompt_dropout, t.max_words)
    params = [p for p in models.text.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2),
                                  weight_decay=t.weight_decay, eps=t.adam_epsilon)
    lr_scheduler = get_scheduler(t.lr_scheduler, optimizer, num_warmup_steps=t.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=t.max_steps * accelerator.num_processes)
    text, optimizer, lr_scheduler = accelerator.prepare(models.text, optimizer, lr_scheduler)
    run = _Run(config, accelerator, models, text, params, optimizer, lr_scheduler, noise_scheduler,
               t.prediction_type or noise_scheduler.config.prediction_type, prompt_encoder(models.base, models.scene),
               weight_dtype, held_out, out_dir)
    if t.resume_from_checkpoint:
        run.checkpoint = find_checkpoint(out_dir, t.resume_from_checkpoint)
        run.step = int(json.loads((run.checkpoint / STATE_FILE).read_text(encoding="utf-8"))["step"])
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(config_to_dict(config), indent=2), encoding="utf-8")
    accumulation = t.gradient_accumulation_steps
    sampler = StepBatchSampler(len(dataset), t.batch_size, t.seed, start=run.step * accumulation,
                               rank=accelerator.process_index, world=accelerator.num_processes,
                               stop=t.max_steps * accumulation)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=config.data.num_workers)
    batches = iter(loader)  # starting the loader draws from the RNG: do it before the RNG state is restored
    if run.checkpoint is not None:
        accelerator.load_state(str(run.checkpoint))
        accelerator.print(f"resumed from {run.checkpoint} at step {run.step}")
    return run, batches


def _place_models(models: Models, t: Any, device: torch.device) -> torch.dtype:
    """Frozen base and scene branch in the mixed-precision dtype on the device; returns that dtype."""
    weight_dtype = _weight_dtype(t.mixed_precision)
    models.base.to(device, weight_dtype)
    if weight_dtype == torch.float16 and getattr(models.base.vae.config, "force_upcast", False):
        models.base.vae.to(torch.float32)  # the SDXL VAE overflows in fp16; it only encodes, without gradients
    models.scene.to(device, weight_dtype)
    if t.gradient_checkpointing:
        models.text.enable_gradient_checkpointing()
        models.base.unet.enable_gradient_checkpointing()
    return weight_dtype


def _optimise(run: _Run, batch: dict) -> torch.Tensor:
    """One micro-batch: loss, backward, and (when gradients sync) clip and optimiser step."""
    t, accelerator = run.config.train, run.accelerator
    with accelerator.accumulate(run.text):
        with accelerator.autocast():
            loss = training_loss(run.models, run.text, batch, run.noise_scheduler, run.encode, beta=t.beta,
                                 prediction_type=run.prediction_type, text_mask_weight=t.text_mask_weight,
                                 weight_dtype=run.weight_dtype, device=accelerator.device)
        accelerator.backward(loss)
        if accelerator.sync_gradients and t.max_grad_norm > 0:
            accelerator.clip_grad_norm_(run.params, t.max_grad_norm)
        run.optimizer.step()
        run.lr_scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
    return loss


def _after_step(run: _Run, result: TrainResult, samples_per_s: float) -> None:
    """Log, checkpoint, write bundles and validate on the steps the config asks for."""
    t, v, accelerator, step = run.config.train, run.config.validation, run.accelerator, run.step
    last = step == t.max_steps
    log_path = run.out_dir / "train_log.jsonl"
    main = accelerator.is_main_process
    if step % t.log_every == 0 or last:
        record = {"step": step, "loss": result.losses[-1], "lr": run.lr_scheduler.get_last_lr()[0],
                  "samples_per_s": samples_per_s, "peak_memory_mb": _peak_memory_mb(accelerator.device)}
        accelerator.print(json.dumps(record))
        if main:
            with log_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
    if step % t.checkpointing_steps == 0 or last:
        checkpoint = run.out_dir / "checkpoints" / f"checkpoint-{step}"
        accelerator.save_state(str(checkpoint))
        if main:
            (checkpoint / STATE_FILE).write_text(json.dumps({"step": step}), encoding="utf-8")
            _prune_checkpoints(run.out_dir, t.checkpoints_total_limit)
    if main and (step % t.save_bundle_steps == 0 or last):
        result.bundles = save_bundles(run.models, accelerator.unwrap_model(run.text), run.out_dir / "bundles", t.beta,
                                      f"step{step:06d}")
    if main and v.every and v.samples and run.held_out and (step % v.every == 0 or last):
        report = validate(run.models, accelerator.unwrap_model(run.text), run.held_out[: v.samples], run.config,
                          step, run.out_dir)
        result.validation.append(report)
        with log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(report) + "\n")
        run.text.train()


def _finish(run: _Run, result: TrainResult, samples_per_s: float) -> TrainResult:
    """Final numbers; the last bundles copied to `ts_text.safetensors` / `ts_full.safetensors`."""
    result.step = run.step
    result.samples_per_second = samples_per_s
    result.peak_memory_mb = _peak_memory_mb(run.accelerator.device)
    run.accelerator.wait_for_everyone()
    if run.accelerator.is_main_process and result.bundles:
        for kind, path in result.bundles.items():
            shutil.copyfile(path, run.out_dir / f"ts_{kind}.safetensors")
        result.bundles = {kind: run.out_dir / f"ts_{kind}.safetensors" for kind in result.bundles}
    if not math.isfinite(result.losses[-1] if result.losses else 0.0):
        raise FloatingPointError("training diverged: the loss is not finite (lower train.learning_rate?)")
    return result
