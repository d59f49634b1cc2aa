"""Stand-in for comfy.samplers (tests only): the CFG guider, the CFG function and a toy sampler.

Behaviour kept from ComfyUI 0.15.1: a guider stores conds by key (`inner_set_conds`), `sample()`
copies them to `self.conds`, sets `self.inner_model` and passes
`model_options["transformer_options"]["sample_sigmas"]`; the sampler calls the guider once per
model evaluation with a per-sample sigma tensor; `sampling_function` does classifier-free
guidance for one cond pair and skips the uncond when the scale is 1.
"""

from __future__ import annotations

import math

import torch

SAMPLER_NAMES = ["euler", "heun", "dpmpp_2m"]
SCHEDULER_NAMES = ["simple", "karras"]

#: every sampling_function call: dict(cond, uncond, cond_scale, sigma), for assertions
sampling_calls: list[dict] = []


def _predict(model, x, timestep, cond):
    """Toy denoiser: what a stub model predicts for one cond list."""
    return model.predict(x, timestep, cond)


def sampling_function(model, x, timestep, uncond, cond, cond_scale, model_options={}, seed=None):
    if math.isclose(cond_scale, 1.0) and not model_options.get("disable_cfg1_optimization", False):
        uncond = None
    sampling_calls.append({"cond": cond, "uncond": uncond, "cond_scale": cond_scale, "sigma": float(timestep[0])})
    cond_pred = _predict(model, x, timestep, cond)
    if uncond is None:
        return cond_pred
    uncond_pred = _predict(model, x, timestep, uncond)
    return uncond_pred + (cond_pred - uncond_pred) * cond_scale


def _convert_cond(cond):
    out = []
    for tensor, options in cond:
        entry = dict(options)
        entry["cross_attn"] = tensor
        out.append(entry)
    return out


class CFGGuider:
    def __init__(self, model_patcher):
        self.model_patcher = model_patcher
        self.model_options = model_patcher.model_options
        self.original_conds = {}
        self.cfg = 1.0

    def set_conds(self, positive, negative):
        self.inner_set_conds({"positive": positive, "negative": negative})

    def set_cfg(self, cfg):
        self.cfg = cfg

    def inner_set_conds(self, conds):
        for key, cond in conds.items():
            self.original_conds[key] = _convert_cond(cond)

    def __call__(self, *args, **kwargs):
        return self.predict_noise(*args, **kwargs)

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        return sampling_function(self.inner_model, x, timestep, self.conds.get("negative"),
                                 self.conds.get("positive"), self.cfg, model_options=model_options, seed=seed)

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
               seed=None):
        if sigmas.shape[-1] == 0:
            return latent_image
        self.conds = {k: [dict(c) for c in v] for k, v in self.original_conds.items()}
        self.inner_model = self.model_patcher.model
        options = dict(self.model_options)
        options["transformer_options"] = dict(options.get("transformer_options", {}), sample_sigmas=sigmas)
        try:
            return sampler.sample(self, sigmas, {"model_options": options, "seed": seed}, callback, noise,
                                  latent_image, denoise_mask, disable_pbar)
        finally:
            del self.conds
            del self.inner_model


class ToySampler:
    """Euler steps; `corrector=True` adds heun's second evaluation at sigmas[i+1]."""

    def __init__(self, corrector: bool = False):
        self.corrector = corrector

    def sample(self, guider, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        x = latent_image + noise * sigmas[0]
        ones = x.new_ones([x.shape[0]])
        total = len(sigmas) - 1
        for i in range(total):
            denoised = guider(x, sigmas[i] * ones, **extra_args)
            if callback is not None:
                callback(i, denoised, x, total)
            d = (x - denoised) / sigmas[i]
            dt = sigmas[i + 1] - sigmas[i]
            if self.corrector and sigmas[i + 1] > 0:
                x2 = x + d * dt
                d2 = (x2 - guider(x2, sigmas[i + 1] * ones, **extra_args)) / sigmas[i + 1]
                d = (d + d2) / 2
            x = x + d * dt
        return x


def sampler_object(name):
    return ToySampler(corrector=(name == "heun"))


def calculate_sigmas(model_sampling, scheduler_name, steps):
    """Geometric sigmas from sigma_max to sigma_min, then 0."""
    if scheduler_name not in SCHEDULER_NAMES:
        raise ValueError(f"error invalid scheduler {scheduler_name}")
    hi, lo = float(model_sampling.sigma_max), float(model_sampling.sigma_min)
    grid = torch.logspace(math.log10(hi), math.log10(lo), steps)
    return torch.cat([grid, grid.new_zeros(1)])


class KSampler:
    SCHEDULERS = SCHEDULER_NAMES
    SAMPLERS = SAMPLER_NAMES

    def __init__(self, model, steps, device, sampler=None, scheduler=None, denoise=None, model_options={}):
        self.sampler = sampler if sampler in self.SAMPLERS else self.SAMPLERS[0]
        self.scheduler = scheduler if scheduler in self.SCHEDULERS else self.SCHEDULERS[0]
        model_sampling = model.get_model_object("model_sampling")
        if denoise is None or denoise > 0.9999:
            self.sigmas = calculate_sigmas(model_sampling, self.scheduler, steps)
        elif denoise <= 0.0:
            self.sigmas = torch.FloatTensor([])
        else:
            self.sigmas = calculate_sigmas(model_sampling, self.scheduler, int(steps / denoise))[-(steps + 1):]
