"""Ping-pong sampling: each step is guided by either the scene or the text prompt pair.

`PingPongGuider` is a `comfy.samplers.CFGGuider` holding four conds. ComfyUI preprocesses all
of them once per run (areas, ControlNet hints, model conds) and loads every model they need; for
each model evaluation the guider finds the step from the sigma (`sample_sigmas` in the
transformer options), asks `glyphsr_core.sampling.pingpong.PingPong` for the branch and CFG scale, and
runs ComfyUI's own `sampling_function` on that pair, so CFG patches and model wrappers apply as
usual and a step costs exactly what a plain KSampler step costs.
"""

from __future__ import annotations

import logging

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import node_helpers

from ..glyphsr_core import defaults
from ..glyphsr_core.sampling.pingpong import SCHEDULES, PingPong
from .runtime import CATEGORY

logger = logging.getLogger(__name__)

TEXT_POSITIVE = "text_positive"
TEXT_NEGATIVE = "text_negative"


class PingPongGuider(comfy.samplers.CFGGuider):
    """CFG guider that switches between the scene pair and the text pair per step."""

    def set_conds(self, scene_positive, scene_negative, text_positive=None, text_negative=None):
        """Register the pairs; a missing text cond falls back to its scene counterpart."""
        conds = {"positive": scene_positive, "negative": scene_negative}
        self.text_keys = {"positive": "positive", "negative": "negative"}
        # extra keys default their prompt_type to the key name; models that read it (SDXL refiner) need these
        for role, cond in (("positive", text_positive), ("negative", text_negative)):
            if cond is not None:
                key = TEXT_POSITIVE if role == "positive" else TEXT_NEGATIVE
                conds[key] = node_helpers.conditioning_set_values(cond, {"prompt_type": role})
                self.text_keys[role] = key
        if text_positive is None and text_negative is None:
            logger.warning("GlyphSR ping-pong: no text_positive/text_negative connected; text steps use the "
                           "scene prompts (only the CFG scale differs between branches)")
        elif text_positive is None or text_negative is None:
            missing = "text_positive" if text_positive is None else "text_negative"
            logger.info("GlyphSR ping-pong: %s not connected; text steps use scene_%s instead",
                        missing, missing.split("_")[1])
        self.inner_set_conds(conds)

    def set_plan(self, plan: PingPong) -> None:
        self.plan = plan
        self.cfg = plan.cfg  # what code reading a guider's `cfg` expects: the main (scene) scale

    def _keys(self, branch: str) -> tuple[str, str]:
        if branch == "scene":
            return "positive", "negative"
        return self.text_keys["positive"], self.text_keys["negative"]

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        sigmas = model_options.get("transformer_options", {}).get("sample_sigmas")
        if sigmas is None:
            raise RuntimeError("GlyphSR ping-pong guider: the sampler passed no sample_sigmas, so the step "
                               "cannot be told; use it with SamplerCustomAdvanced or the ping-pong KSampler")
        choice = self.plan.choose(timestep, self._sigma_floats(sigmas))
        positive, negative = self._keys(choice.branch)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("GlyphSR ping-pong: sigma %.6g -> step %d/%d %s cfg %.4g", float(timestep.flatten()[0]),
                         choice.step, choice.total_steps, choice.branch, choice.cfg)
        return comfy.samplers.sampling_function(self.inner_model, x, timestep, self.conds.get(negative),
                                                self.conds.get(positive), choice.cfg,
                                                model_options=model_options, seed=seed)

    def _sigma_floats(self, sigmas) -> list[float]:
        """The schedule as Python floats, converted once per run instead of once per evaluation."""
        cached = getattr(self, "_sigma_cache", None)
        if cached is None or cached[0] is not sigmas:
            cached = (sigmas, [float(s) for s in sigmas.tolist()])
            self._sigma_cache = cached
        return cached[1]

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
               seed=None):
        steps = sigmas.shape[-1] - 1
        if steps >= 1:
            logger.info("GlyphSR ping-pong: %d step(s), schedule %s: %s", steps, self.plan.schedule,
                        self.plan.branches(steps))
            if steps == 1:
                logger.warning("GlyphSR ping-pong: a single step cannot alternate; it uses the %s pair",
                               self.plan.branch(0, 1))
        try:
            return super().sample(noise, latent_image, sampler, sigmas, denoise_mask=denoise_mask,
                                  callback=callback, disable_pbar=disable_pbar, seed=seed)
        finally:
            self._sigma_cache = None


def _cond_inputs() -> tuple[dict, dict]:
    required = {
        "scene_positive": ("CONDITIONING", {"tooltip": "Scene prompt (caption): guides the scene steps."}),
        "scene_negative": ("CONDITIONING", {"tooltip": "Negative prompt of the scene steps."}),
    }
    optional = {
        "text_positive": ("CONDITIONING", {"tooltip": "Text prompt (the words to restore): guides the text "
                                                      "steps. Not connected: the scene prompt is used."}),
        "text_negative": ("CONDITIONING", {"tooltip": "Negative prompt of the text steps. Not connected: the "
                                                      "scene negative is used."}),
    }
    return required, optional


def _schedule_inputs() -> dict:
    return {
        "text_cfg": ("FLOAT", {"default": defaults.TEXT_CFG, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                               "tooltip": "CFG scale of the text steps (cfg is the scale of the scene steps)."}),
        "schedule": (list(SCHEDULES), {"default": defaults.SCHEDULE, "tooltip": (
            "alternate: scene, text, scene, ... every step (the authors' released sampler). alternate_then_text: "
            "alternate until switch_at, then text only (the authors' benchmark runs). scene_then_text: scene until "
            "switch_at, then text. "
            "pattern: repeat the S/T letters of 'pattern'.")}),
        "switch_at": ("FLOAT", {"default": defaults.SWITCH_AT, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
            "Fraction of the steps after which alternate_then_text and scene_then_text use only the text "
            "pair (0.9 of 20 steps: steps 18 and 19).")}),
        "pattern": ("STRING", {"default": defaults.PATTERN, "tooltip": (
            "For schedule 'pattern': S = scene step, T = text step, repeated (e.g. SST). Ignored otherwise.")}),
    }


def _ramp_input() -> dict:
    return {"cfg_start": ("FLOAT", {"default": defaults.CFG_START, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                                    "tooltip": "CFG of the first step, ramped linearly to cfg / text_cfg at "
                                               "the last step (the authors used 4.0 -> 7.5). 0 = no ramp."})}


def make_guider(model, scene_positive, scene_negative, cfg, text_cfg, schedule, switch_at, pattern,
                text_positive=None, text_negative=None, cfg_start=defaults.CFG_START) -> PingPongGuider:
    """A ready ping-pong guider; bad schedule settings raise ScheduleError before any sampling."""
    plan = PingPong(schedule=schedule, switch_at=switch_at, pattern=pattern, cfg=cfg, text_cfg=text_cfg,
                    cfg_start=cfg_start)
    guider = PingPongGuider(model)
    guider.set_conds(scene_positive, scene_negative, text_positive, text_negative)
    guider.set_plan(plan)
    return guider


class PingPongGuiderNode:
    DESCRIPTION = ("Guider for SamplerCustomAdvanced that guides each step with either the scene prompt pair or "
                   "the text prompt pair (GLYPH-SR ping-pong sampling). Works with any sampler, sigmas and noise.")

    @classmethod
    def INPUT_TYPES(cls):
        required, optional = _cond_inputs()
        return {
            "required": {
                "model": ("MODEL",),
                **required,
                "cfg": ("FLOAT", {"default": defaults.CFG, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                                  "tooltip": "CFG scale of the scene steps."}),
                **_schedule_inputs(),
            },
            "optional": {**optional, **_ramp_input()},
        }

    RETURN_TYPES = ("GUIDER",)
    RETURN_NAMES = ("guider",)
    FUNCTION = "get_guider"
    CATEGORY = CATEGORY

    def get_guider(self, model, scene_positive, scene_negative, cfg, text_cfg, schedule, switch_at, pattern,
                   text_positive=None, text_negative=None, cfg_start=defaults.CFG_START):
        return (make_guider(model, scene_positive, scene_negative, cfg, text_cfg, schedule, switch_at, pattern,
                            text_positive, text_negative, cfg_start),)


class PingPongKSampler:
    DESCRIPTION = ("KSampler whose steps alternate between the scene prompt pair and the text prompt pair "
                   "(GLYPH-SR ping-pong sampling). Same seed, noise, denoise, preview and progress as KSampler; "
                   "with identical pairs and text_cfg = cfg it gives KSampler's result.")

    @classmethod
    def INPUT_TYPES(cls):
        required, optional = _cond_inputs()
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model used for denoising the input latent."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                                 "tooltip": "The random seed used for creating the noise."}),
                "steps": ("INT", {"default": defaults.STEPS, "min": 1, "max": 10000,
                                  "tooltip": "Denoising steps; a single step cannot alternate."}),
                "cfg": ("FLOAT", {"default": defaults.CFG, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                                  "tooltip": "CFG scale of the scene steps."}),
                "sampler_name": (comfy.samplers.KSampler.SAMPLERS, {"tooltip": (
                    "Sampling algorithm. Each model evaluation is guided by the step its sigma falls in: "
                    "samplers that evaluate again at the next step's sigma (heun's corrector, "
                    "dpmpp_2s_ancestral's second stage) use the next step's pair there.")}),
                "scheduler": (comfy.samplers.KSampler.SCHEDULERS, {"tooltip": "How noise is removed over the steps."}),
                **required,
                "latent_image": ("LATENT", {"tooltip": "The latent image to denoise."}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                      "tooltip": "Amount of denoising; the schedule counts the steps actually run."}),
                **_schedule_inputs(),
            },
            "optional": {**optional, **_ramp_input()},
        }

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The denoised latent.",)
    FUNCTION = "sample"
    CATEGORY = CATEGORY

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, scene_positive, scene_negative, latent_image,
               denoise, text_cfg, schedule, switch_at, pattern, text_positive=None, text_negative=None,
               cfg_start=defaults.CFG_START):
        guider = make_guider(model, scene_positive, scene_negative, cfg, text_cfg, schedule, switch_at, pattern,
                             text_positive, text_negative, cfg_start)
        return sample_latent(model, guider, latent_image, seed, steps, sampler_name, scheduler, denoise,
                             lambda samples, sigmas: latent_preview.prepare_callback(model, steps))


def sample_latent(model, guider, latent: dict, seed: int, steps: int, sampler_name: str, scheduler: str,
                  denoise: float, make_callback) -> tuple[dict]:
    """ComfyUI's common_ksampler preparation with `guider` in place of CFGGuider; `make_callback(samples,
    sigmas)` gives the step callback once the latent and the sigmas are known."""
    samples = comfy.sample.fix_empty_latent_channels(model, latent["samples"],
                                                     latent.get("downscale_ratio_spacial", None))
    noise = comfy.sample.prepare_noise(samples, seed, latent.get("batch_index", None))
    ksampler = comfy.samplers.KSampler(model, steps=steps, device=model.load_device, sampler=sampler_name,
                                       scheduler=scheduler, denoise=denoise, model_options=model.model_options)
    callback = make_callback(samples, ksampler.sigmas)
    result = guider.sample(noise, samples, comfy.samplers.sampler_object(ksampler.sampler), ksampler.sigmas,
                           denoise_mask=latent.get("noise_mask", None), callback=callback,
                           disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    out = latent.copy()
    out.pop("downscale_ratio_spacial", None)
    out["samples"] = result.to(comfy.model_management.intermediate_device())
    return (out,)


NODE_CLASS_MAPPINGS = {
    "GlyphSR_PingPongGuider": PingPongGuiderNode,
    "GlyphSR_PingPongKSampler": PingPongKSampler,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "GlyphSR_PingPongGuider": "GlyphSR Ping-Pong Guider",
    "GlyphSR_PingPongKSampler": "GlyphSR Ping-Pong KSampler",
}
