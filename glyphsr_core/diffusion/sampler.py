"""The diffusers sampler of the headless method: a base model and a TS-ControlNet under a ping-pong
prompt schedule, plus `Conditioning`, the encoded prompt pair it samples with.

Denoising runs with a TS-ControlNet (scene + text branch residuals blended by a scalar beta or a beta
map from the text mask, optional glyph-map hint on the text branch) under a ping-pong prompt
schedule, optionally in tiles blended every step (`glyphsr_core.tiling.sampler`). What feeds it (OCR,
caption, prompts, masks) and what follows (colour fix, Text Guard) is `glyphsr_core.method`.

The denoising loop is our own loop over the UNet and the two ControlNetModels (one UNet evaluation
per step, like the ComfyUI nodes); prompt encoding, latent preparation and decoding reuse the
matching diffusers ControlNet pipeline's own methods, so with beta 0 and one prompt pair the loop
reproduces `StableDiffusion(XL)ControlNetPipeline` exactly.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from .. import defaults
from ..errors import InvalidInputError
from ..sampling.pingpong import PingPong
from ..tiling.sampler import SampleTiling, TiledInputs
from ..tscontrolnet.bundle import TEXT_HINTS, hint_image, read_bundle, takes_glyph
from . import residuals as res
from .models import (BaseModel, MissingWeightsError, controlnet_from_state_dict, encode_images, load_base,
                     load_controlnet, make_scheduler)

logger = logging.getLogger(__name__)

#: the shared defaults (glyphsr_core.defaults): the authors' benchmark sampler
DEFAULT_STEPS = defaults.STEPS
DEFAULT_PINGPONG = PingPong()


class PipelineInputError(InvalidInputError):
    """An input of the GLYPH-SR pipeline has the wrong type, shape or value."""


@dataclass
class Conditioning:
    """One encoded prompt pair for a batch: positive and negative token embeddings (+ SDXL pooled)."""

    positive: torch.Tensor
    negative: torch.Tensor
    pooled_positive: torch.Tensor | None = None
    pooled_negative: torch.Tensor | None = None

    @property
    def batch(self) -> int:
        return int(self.positive.shape[0])


def _as_list(value: str | Sequence[str], batch: int, name: str) -> list[str]:
    items = [value] * batch if isinstance(value, str) else list(value)
    if len(items) != batch:
        raise PipelineInputError(f"{name}: expected {batch} prompt(s) (one per image), got {len(items)}")
    return items


class GlyphSRPipeline:
    """A base model, a frozen scene ControlNet and an optional text ControlNet (the TS-ControlNet).

    The text ControlNet may be the scene ControlNet itself (a shared text branch, text_hint
    'restored'): one set of weights, run a second time on the restored image.
    """

    def __init__(self, base: BaseModel, scene_controlnet: Any, text_controlnet: Any | None = None, *,
                 text_hint: str = "lq", beta: float = 0.5, device: torch.device | str | None = None) -> None:
        if text_hint not in TEXT_HINTS:
            raise PipelineInputError(f"text_hint must be one of {TEXT_HINTS}; got {text_hint!r}")
        self.base = base
        self.scene_controlnet = scene_controlnet
        self.text_controlnet = text_controlnet
        self.text_hint = text_hint
        self.beta = float(beta) if text_controlnet is not None else 0.0
        self.device = torch.device(device) if device is not None else base.unet.device
        self.pipe = base.controlnet_pipeline(scene_controlnet)
        self.pipe.set_progress_bar_config(disable=True)
        if text_controlnet is not None:
            hint_channels = int(text_controlnet.config.conditioning_channels)
            if not takes_glyph(text_hint) and hint_channels != 3:
                raise PipelineInputError(f"the text branch takes a {hint_channels}-channel hint, but text_hint is "
                                         f"{text_hint!r} (3 channels)")
            if takes_glyph(text_hint) and hint_channels <= 3:
                raise PipelineInputError(f"text_hint {text_hint!r} needs a text branch with more than 3 hint channels")
            if text_controlnet is scene_controlnet and text_hint != "restored":
                raise PipelineInputError("a shared text branch (the scene ControlNet) must see the restored image "
                                         f"(text_hint 'restored'), got {text_hint!r}")

    # ----------------------------------------------------------------------------------------------
    @classmethod
    def from_files(cls, base: str | Path, scene_controlnet: str | Path | None, ts_controlnet: str | Path | None = None,
                   *, base_config: str | Path | None = None, device: str | None = None,
                   dtype: torch.dtype = torch.float32, shared_text: bool = False) -> "GlyphSRPipeline":
        """Load everything from local files; a missing file raises MissingWeightsError naming it.

        `scene_controlnet` may be None when `ts_controlnet` is a full bundle (it carries the scene branch).
        `shared_text` (instead of `ts_controlnet`): the text branch is the scene ControlNet, fed the
        restored image; no second set of weights is loaded.
        """
        if shared_text and ts_controlnet is not None:
            raise PipelineInputError("choose either a TS-ControlNet bundle (--ts-controlnet) or the shared text "
                                     "branch (--shared-text-branch), not both")
        for what, path in (("base model", base), ("scene ControlNet", scene_controlnet), ("TS-ControlNet", ts_controlnet)):
            if path is not None and not Path(path).exists():
                raise MissingWeightsError(_missing_message(what, Path(path)))
        bundle = None
        if ts_controlnet is not None:
            bundle = read_bundle(ts_controlnet)
        if scene_controlnet is None and (bundle is None or bundle.scene is None):
            raise MissingWeightsError("no scene ControlNet: pass the SR / tile ControlNet for this base model "
                                      "(--scene-controlnet), or a full TS-ControlNet bundle that contains it")
        model = load_base(base, config=base_config, dtype=dtype)
        if scene_controlnet is not None:
            if bundle is not None and bundle.scene is not None:
                logger.warning("%s is a full bundle; its scene branch is not used because a scene ControlNet "
                               "was given (%s)", ts_controlnet, scene_controlnet)
            scene = load_controlnet(scene_controlnet, model.unet, what="scene ControlNet")
        else:
            scene = controlnet_from_state_dict(bundle.scene, model.unet, name=f"scene branch of {ts_controlnet}")
        text, text_hint, beta = None, "lq", 0.0
        if shared_text or (bundle is not None and bundle.shared):
            text, text_hint, beta = scene, "restored", bundle.beta if bundle is not None else 0.5
        elif bundle is not None:
            text = controlnet_from_state_dict(bundle.text, model.unet, name=f"text branch of {ts_controlnet}")
            text_hint, beta = bundle.text_hint, bundle.beta
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model.to(device)
        for net in (scene, text):
            if net is not None:
                net.to(device).eval().requires_grad_(False)
        return cls(model, scene, text, text_hint=text_hint, beta=beta, device=device)

    # ----------------------------------------------------------------------------------------------
    @property
    def vae_scale_factor(self) -> int:
        return int(self.pipe.vae_scale_factor)

    @torch.no_grad()
    def encode(self, positive: str | Sequence[str], negative: str | Sequence[str], batch: int = 1) -> Conditioning:
        """Encode a prompt pair with the base model's text encoder(s), one prompt per image."""
        positive = _as_list(positive, batch, "positive prompt")
        negative = _as_list(negative, batch, "negative prompt")
        if self.base.family == "sdxl":
            pos, neg, pooled, pooled_neg = self.pipe.encode_prompt(
                prompt=positive, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=True,
                negative_prompt=negative)
            return Conditioning(pos, neg, pooled, pooled_neg)
        pos, neg = self.pipe.encode_prompt(positive, self.device, 1, True, negative_prompt=negative)
        return Conditioning(pos, neg)

    def text_hint_image(self, control: torch.Tensor, glyph: torch.Tensor | None,
                        restored: torch.Tensor | None = None) -> torch.Tensor:
        """The text branch's hint: the LQ control image or the restored image (as its text_hint says),
        plus the glyph map in the extra channels."""
        if self.text_controlnet is not None and hint_image(self.text_hint) == "restored":
            if restored is None:
                raise PipelineInputError(f"this text branch (text_hint {self.text_hint!r}) sees the restored image: "
                                         f"pass restored")
            restored = restored.to(control)
            if restored.shape != control.shape:
                raise PipelineInputError(f"restored must be the control image's shape {tuple(control.shape)}; "
                                         f"got {tuple(restored.shape)}")
            control = restored
        if self.text_controlnet is None or not takes_glyph(self.text_hint):
            return control
        if glyph is None:
            raise PipelineInputError(f"this TS-ControlNet's text branch takes a glyph map ({self.text_hint!r}): "
                                     f"pass glyph")
        extra = int(self.text_controlnet.config.conditioning_channels) - control.shape[1]
        glyph = glyph.to(control)
        if glyph.shape[-2:] != control.shape[-2:]:
            glyph = F.interpolate(glyph, size=control.shape[-2:], mode="bilinear", align_corners=False)
        if glyph.shape[1] == 1:
            glyph = glyph.expand(-1, extra, -1, -1)
        if glyph.shape[1] != extra or glyph.shape[0] != control.shape[0]:
            raise PipelineInputError(f"glyph must be [B, 1 or {extra}, H, W] with B={control.shape[0]}; "
                                     f"got {tuple(glyph.shape)}")
        return torch.cat([control, glyph], dim=1)

    # ----------------------------------------------------------------------------------------------
    def _added_cond(self, cond: Conditioning, height: int, width: int, cfg_on: bool) -> dict | None:
        if self.base.family != "sdxl":
            return None
        projection = int(self.base.text_encoder_2.config.projection_dim) if self.base.text_encoder_2 is not None \
            else int(cond.pooled_positive.shape[-1])
        time_ids = self.pipe._get_add_time_ids((height, width), (0, 0), (height, width), dtype=cond.positive.dtype,
                                               text_encoder_projection_dim=projection).to(self.device)
        text_embeds = cond.pooled_positive
        if cfg_on:
            text_embeds = torch.cat([cond.pooled_negative, cond.pooled_positive])
            time_ids = torch.cat([time_ids, time_ids])
        return {"text_embeds": text_embeds.to(self.device), "time_ids": time_ids.repeat(cond.batch, 1)}

    @torch.no_grad()
    def sample(self, control: torch.Tensor, scene: Conditioning, text: Conditioning | None = None, *,
               glyph: torch.Tensor | None = None, restored: torch.Tensor | None = None,
               beta: float | None = None, beta_map: Any = None,
               steps: int = DEFAULT_STEPS, pingpong: PingPong = DEFAULT_PINGPONG, scheduler: str | None = "euler",
               generator: torch.Generator | None = None, controlnet_scale: float = 1.0,
               latents: torch.Tensor | None = None, denoise: float = 1.0, output: str = "image",
               callback: Callable[[int, int, str], None] | None = None, tiling: SampleTiling | None = None,
               tile_text: list[Conditioning] | None = None) -> torch.Tensor:
        """Denoise from noise guided by the control image; returns images [B,3,H,W] in 0..1 (or latents).

        `control` is the upscaled LQ image [B,3,H,W] in 0..1 (H, W multiples of the VAE factor);
        `restored` the stage-1 restored image of the same shape, for text branches that see it.
        Step i uses the `scene` or `text` prompt pair as `pingpong` says; the control residuals are
        `(1 - beta) * scene + beta * text` (a `fusion.BetaMap` replaces the scalar), with the
        text branch skipped when beta is 0 and no map is given. `scheduler` None keeps the base's.
        `denoise` < 1 starts from the control image's latents noised to that fraction of the schedule
        and runs only the remaining steps (as diffusers' img2img ControlNet pipeline does); the
        ping-pong schedule then counts the steps that run. `tiling` runs every model evaluation on
        overlapping latent tiles blended with smooth weights (glyphsr_core.tiling); `tile_text`
        gives each tile its own text prompt pair (one Conditioning per tile, batch 1 or B).
        """
        text = text or scene
        self._check_sample_inputs(control, scene, text, steps, denoise)
        beta = self.beta if beta is None else float(beta)
        use_text = self.text_controlnet is not None and (beta > 0.0 or beta_map is not None)
        if (beta > 0.0 or beta_map is not None) and self.text_controlnet is None:
            raise PipelineInputError("beta > 0 or a beta map needs a text branch (load a TS-ControlNet bundle)")
        if scheduler is not None:
            self.pipe.scheduler = make_scheduler(scheduler, self.base.scheduler.config)
        control = control.to(device=self.device, dtype=self.scene_controlnet.dtype)
        step = _StepInputs({"scene": scene, "text": text}, control,
                           self.text_hint_image(control, glyph, restored) if use_text else None,
                           use_text, beta, beta_map, controlnet_scale)
        timesteps, latents = self._start_latents(control, scene, steps, denoise, generator, latents)
        tiled = self._tiled_inputs(tiling, latents, step, tile_text)
        extra_step = self.pipe.prepare_extra_step_kwargs(generator, 0.0)
        total = len(timesteps)
        for i, t in enumerate(timesteps):
            branch = pingpong.branch(i, total)
            cfg = pingpong.cfg_for(branch, i, total)
            if tiled is None:
                noise_pred = self._step_pred(latents, t, step.conds[branch], step, step.control, step.text_control,
                                             step.beta_map, cfg, *control.shape[-2:])
            else:
                noise_pred = self._tiled_pred(latents, t, branch, step, tiled, tile_text, cfg)
            latents = self.pipe.scheduler.step(noise_pred, t, latents, **extra_step, return_dict=False)[0]
            if callback is not None:
                callback(i, total, branch)
        return latents if output == "latent" else self.decode(latents)

    def _check_sample_inputs(self, control: torch.Tensor, scene: Conditioning, text: Conditioning, steps: int,
                             denoise: float) -> None:
        if control.ndim != 4 or control.shape[1] != 3:
            raise PipelineInputError(f"control must be an image batch [B, 3, H, W] in 0..1; got {tuple(control.shape)}")
        batch, _, height, width = control.shape
        factor = self.vae_scale_factor
        if height % factor or width % factor:
            raise PipelineInputError(f"control image size {width}x{height} must be a multiple of {factor}")
        if steps < 1:
            raise PipelineInputError(f"steps must be at least 1; got {steps}")
        for name, cond in (("scene", scene), ("text", text)):
            if cond.batch != batch:
                raise PipelineInputError(f"{name} prompts are for {cond.batch} image(s), control has {batch}")
        if not 0.0 < denoise <= 1.0:
            raise PipelineInputError(f"denoise must be in (0, 1]; got {denoise}")

    def _start_latents(self, control: torch.Tensor, scene: Conditioning, steps: int, denoise: float,
                       generator: torch.Generator | None, latents: torch.Tensor | None) -> tuple:
        """(the timesteps that run, the starting latents): pure noise, or with denoise < 1 the control
        image's latents noised to the first timestep that runs."""
        from diffusers.utils.torch_utils import randn_tensor

        sched = self.pipe.scheduler
        sched.set_timesteps(steps, device=self.device)
        timesteps = sched.timesteps
        batch, _, height, width = control.shape
        if denoise >= 1.0:
            return timesteps, self.pipe.prepare_latents(batch, self.base.unet.config.in_channels, height, width,
                                                        scene.positive.dtype, self.device, generator, latents)
        start = steps - min(int(steps * denoise), steps)
        timesteps = timesteps[start * sched.order:]
        if len(timesteps) == 0:
            raise PipelineInputError(f"denoise {denoise} of {steps} steps leaves no step to run: raise either")
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(start * sched.order)
        init = encode_images(self.base.vae, control * 2.0 - 1.0, generator).to(scene.positive.dtype)
        noise = randn_tensor(init.shape, generator=generator, device=self.device, dtype=init.dtype)
        return timesteps, sched.add_noise(init, noise, timesteps[:1].repeat(batch))

    def _tiled_inputs(self, tiling: SampleTiling | None, latents: torch.Tensor, step: "_StepInputs",
                      tile_text: list[Conditioning] | None) -> TiledInputs | None:
        if tiling is None:
            return None
        factor = self.vae_scale_factor
        grid = tiling.grid(latents.shape[-2], latents.shape[-1], factor)
        logger.info("tiled sampling: %s, %d tile(s) per model call", grid.describe(), tiling.batch)
        if tile_text is not None and len(tile_text) != len(grid):
            raise PipelineInputError(f"{len(tile_text)} per-tile text prompt pair(s) for {len(grid)} tile(s)")
        return TiledInputs(grid, tiling.batch, latents.shape[0], step.control, step.text_control, step.beta_map,
                           factor)

    def _tiled_pred(self, latents: torch.Tensor, t, branch: str, step: "_StepInputs", tiled: TiledInputs,
                    tile_text: list[Conditioning] | None, cfg: float) -> torch.Tensor:
        """One step's noise prediction, tile batch by tile batch, blended into the whole latent's."""
        factor = self.vae_scale_factor
        grid = tiled.grid
        noise_pred = torch.zeros_like(latents)
        for b in range(len(tiled.batches)):
            per_tile = tile_text if branch == "text" and tile_text is not None else None
            cond = tiled.conditioning(b, step.conds[branch], per_tile)
            pred = self._step_pred(tiled.latents(b, latents), t, cond, step, tiled.control[b], tiled.text_control[b],
                                   tiled.beta_map[b], cfg, grid.tile_height * factor, grid.tile_width * factor)
            tiled.blend(b, pred, noise_pred)
        return noise_pred

    def _step_pred(self, latents: torch.Tensor, t, cond: Conditioning, step: "_StepInputs", control: torch.Tensor,
                   text_control: torch.Tensor | None, beta_map: Any, cfg: float, height: int,
                   width: int) -> torch.Tensor:
        return self._noise_pred(latents, t, cond, control, text_control, step.use_text, step.beta, beta_map, cfg,
                                step.controlnet_scale, height, width)

    def _noise_pred(self, latents: torch.Tensor, t, cond: Conditioning, control: torch.Tensor,
                    text_control: torch.Tensor | None, use_text: bool, beta: float, beta_map: Any, cfg: float,
                    controlnet_scale: float, height: int, width: int) -> torch.Tensor:
        """One guided noise prediction: both ControlNet branches, fused residuals, the UNet, CFG."""
        sched = self.pipe.scheduler
        # as ComfyUI: only a scale of exactly 1 skips the negative prompt; below 1 CFG still applies
        cfg_on = not math.isclose(cfg, 1.0)
        embeds = torch.cat([cond.negative, cond.positive]) if cfg_on else cond.positive
        embeds = embeds.to(self.device)
        added = self._added_cond(cond, height, width, cfg_on)
        model_in = torch.cat([latents] * 2) if cfg_on else latents
        model_in = sched.scale_model_input(model_in, t)
        repeat = 2 if cfg_on else 1
        down, mid = self.scene_controlnet(
            model_in, t, encoder_hidden_states=embeds, controlnet_cond=torch.cat([control] * repeat),
            conditioning_scale=controlnet_scale, added_cond_kwargs=added, return_dict=False)
        if use_text:
            text_dtype = self.text_controlnet.dtype  # fp32 while it trains beside a half-precision base
            text_res = self.text_controlnet(
                model_in.to(text_dtype), t, encoder_hidden_states=embeds.to(text_dtype),
                controlnet_cond=torch.cat([text_control] * repeat).to(text_dtype),
                conditioning_scale=controlnet_scale, added_cond_kwargs=_cast_added(added, text_dtype),
                return_dict=False)
            down, mid = res.fuse((tuple(down), mid), (tuple(text_res[0]), text_res[1]), beta, beta_map, repeat)
        unet_dtype = self.base.unet.dtype
        noise_pred = self.base.unet(
            model_in, t, encoder_hidden_states=embeds,
            down_block_additional_residuals=[d.to(unet_dtype) for d in down],
            mid_block_additional_residual=mid.to(unet_dtype), added_cond_kwargs=added, return_dict=False)[0]
        if cfg_on:
            uncond, condp = noise_pred.chunk(2)
            noise_pred = uncond + cfg * (condp - uncond)
        return noise_pred

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> images [B,3,H,W] in 0..1 (the diffusers pipeline's own un-scaling)."""
        vae = self.base.vae
        upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)  # SDXL VAE overflows in fp16
        if upcast:
            vae.to(torch.float32)
        mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
        latents = latents.to(vae.dtype)
        if mean is not None and std is not None:
            mean = torch.tensor(mean).view(1, -1, 1, 1).to(latents)
            std = torch.tensor(std).view(1, -1, 1, 1).to(latents)
            latents = latents * std / vae.config.scaling_factor + mean
        else:
            latents = latents / vae.config.scaling_factor
        image = vae.decode(latents, return_dict=False)[0]
        if upcast:
            vae.to(torch.float16)
        return self.pipe.image_processor.postprocess(image, output_type="pt").float()

def _missing_message(what: str, path: Path) -> str:
    hints = {
        "base model": "a diffusers folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/) "
                      "or a .safetensors checkpoint with --base-config <diffusers folder>",
        "scene ControlNet": "the frozen SR/tile ControlNet for this base model (.safetensors)",
        "TS-ControlNet": "a GLYPH-SR TS-ControlNet bundle (.safetensors with glyphsr_format=ts-controlnet/1), "
                         "e.g. the text-only bundle written by `python -m glyphsr_core train`",
    }
    return f"{what} not found: {path}. Provide {hints[what]}"


@dataclass
class _StepInputs:
    """What every model evaluation of one `sample` call shares."""

    conds: dict[str, Conditioning]
    control: torch.Tensor
    text_control: torch.Tensor | None
    use_text: bool
    beta: float
    beta_map: Any
    controlnet_scale: float


def _cast_added(added: dict | None, dtype: torch.dtype) -> dict | None:
    """SDXL's added conditioning in a branch's dtype (floating tensors only)."""
    if added is None:
        return None
    return {k: v.to(dtype) if torch.is_floating_point(v) else v for k, v in added.items()}
