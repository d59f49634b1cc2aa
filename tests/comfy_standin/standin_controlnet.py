"""Stand-in for comfy.controlnet (tests only): the ControlBase contract and a toy ControlNet.

Behaviour kept from ComfyUI 0.15.1 (restated, not copied): `set_cond_hint` stores the hint,
strength, percent range and extra concat inputs; `pre_run` turns percents into sigmas and
recurses into `previous_controlnet`; `cleanup`, `get_models`, `get_extra_hooks` and
`inference_memory_requirements` recurse the same way; `control_merge` scales each residual
once, in place, and adds the previous ControlNet's residuals. `ControlNet` wraps its model in a
patcher, fits the hint (+ extra concat channels) to the latent x 8 and broadcasts it over the
batch. The toy model is a single conv over the hint: enough to see hint channels, glyph inputs
and blending, cheap enough for unit tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import comfy.model_management
import comfy.model_patcher

HINT_KEYS = ("input_hint_block.0.weight", "control_model.input_hint_block.0.weight",
             "controlnet_cond_embedding.conv_in.weight")


def broadcast_image_to(tensor, target_batch_size, batched_number):
    if tensor.shape[0] in (1, target_batch_size):
        return tensor
    per_chunk = target_batch_size // batched_number
    index = (torch.arange(target_batch_size) % per_chunk) % tensor.shape[0]
    return tensor[index]


class ControlBase:
    def __init__(self):
        self.cond_hint_original = None
        self.cond_hint = None
        self.strength = 1.0
        self.timestep_percent_range = (0.0, 1.0)
        self.timestep_range = None
        self.previous_controlnet = None
        self.extra_concat_orig = []
        self.extra_hooks = None
        self.vae = None
        self.latent_format = None
        self.compression_ratio = 8

    def set_cond_hint(self, cond_hint, strength=1.0, timestep_percent_range=(0.0, 1.0), vae=None, extra_concat=[]):
        self.cond_hint_original = cond_hint
        self.strength = strength
        self.timestep_percent_range = timestep_percent_range
        self.vae = vae
        self.extra_concat_orig = list(extra_concat)
        return self

    def pre_run(self, model, percent_to_timestep_function):
        self.timestep_range = (percent_to_timestep_function(self.timestep_percent_range[0]),
                               percent_to_timestep_function(self.timestep_percent_range[1]))
        if self.previous_controlnet is not None:
            self.previous_controlnet.pre_run(model, percent_to_timestep_function)

    def set_previous_controlnet(self, controlnet):
        self.previous_controlnet = controlnet
        return self

    def cleanup(self):
        if self.previous_controlnet is not None:
            self.previous_controlnet.cleanup()
        self.cond_hint = None
        self.timestep_range = None

    def get_models(self):
        return self.previous_controlnet.get_models() if self.previous_controlnet is not None else []

    def get_extra_hooks(self):
        out = [self.extra_hooks] if self.extra_hooks is not None else []
        if self.previous_controlnet is not None:
            out += self.previous_controlnet.get_extra_hooks()
        return out

    def copy_to(self, c):
        c.cond_hint_original = self.cond_hint_original
        c.strength = self.strength
        c.timestep_percent_range = self.timestep_percent_range
        c.vae = self.vae
        c.extra_concat_orig = list(self.extra_concat_orig)
        c.compression_ratio = self.compression_ratio

    def inference_memory_requirements(self, dtype):
        if self.previous_controlnet is not None:
            return self.previous_controlnet.inference_memory_requirements(dtype)
        return 0

    def control_merge(self, control, control_prev, output_dtype):
        out = {"input": [], "middle": [], "output": []}
        for key, values in control.items():
            scaled = set()
            for x in values:
                if x is not None and x not in scaled:
                    scaled.add(x)
                    x *= self.strength
                out[key].append(x)
        if control_prev is not None:
            for key in ("input", "middle", "output"):
                mine = out[key]
                for i, prev in enumerate(control_prev[key]):
                    if i >= len(mine):
                        mine.append(prev)
                    elif prev is not None:
                        mine[i] = prev if mine[i] is None else prev + mine[i]
        return out


class ToyControlModel(torch.nn.Module):
    """Residuals = one conv over the hint, pooled to the latent grid, plus the noisy latent's mean."""

    def __init__(self, hint_weight: torch.Tensor):
        super().__init__()
        self.hint_conv = torch.nn.Parameter(hint_weight.detach().float().clone())

    @property
    def dtype(self):
        return self.hint_conv.dtype

    def forward(self, x, hint, timesteps=None, context=None, **kwargs):
        if hint.shape[1] != self.hint_conv.shape[1]:
            raise RuntimeError(f"toy ControlNet takes {self.hint_conv.shape[1]} hint channels, got {hint.shape[1]}")
        h = F.conv2d(hint, self.hint_conv, padding=self.hint_conv.shape[-1] // 2)
        h = F.adaptive_avg_pool2d(h, x.shape[-2:]) + x.mean(1, keepdim=True)
        return {"middle": [F.avg_pool2d(h, 4)], "output": [h, h * 0.5, F.avg_pool2d(h, 2)]}


class ControlNet(ControlBase):
    def __init__(self, control_model=None, load_device=None, manual_cast_dtype=None):
        super().__init__()
        self.control_model = control_model
        self.load_device = load_device
        self.manual_cast_dtype = manual_cast_dtype
        self.model_sampling_current = None
        if control_model is not None:
            self.control_model_wrapped = comfy.model_patcher.ModelPatcher(
                control_model, load_device=load_device, offload_device=comfy.model_management.unet_offload_device())

    def get_control(self, x_noisy, t, cond, batched_number, transformer_options):
        control_prev = None
        if self.previous_controlnet is not None:
            control_prev = self.previous_controlnet.get_control(x_noisy, t, cond, batched_number, transformer_options)
        if self.timestep_range is not None and (t[0] > self.timestep_range[0] or t[0] < self.timestep_range[1]):
            return control_prev
        size = (x_noisy.shape[-2] * self.compression_ratio, x_noisy.shape[-1] * self.compression_ratio)
        if self.cond_hint is None or tuple(self.cond_hint.shape[-2:]) != size:
            hint = F.interpolate(self.cond_hint_original, size=size, mode="nearest-exact")
            extra = [F.interpolate(c, size=size, mode="nearest-exact") for c in self.extra_concat_orig]
            extra = [c.expand(hint.shape[0], *c.shape[1:]) if c.shape[0] == 1 else c for c in extra]
            self.cond_hint = torch.cat([hint] + extra, dim=1)
        if x_noisy.shape[0] != self.cond_hint.shape[0]:
            self.cond_hint = broadcast_image_to(self.cond_hint, x_noisy.shape[0], batched_number)
        control = self.control_model(x=x_noisy, hint=self.cond_hint, timesteps=t, context=cond.get("c_crossattn"))
        return self.control_merge(control, control_prev, None)

    def copy(self):
        c = ControlNet(None, load_device=self.load_device, manual_cast_dtype=self.manual_cast_dtype)
        c.control_model = self.control_model
        c.control_model_wrapped = self.control_model_wrapped
        self.copy_to(c)
        return c

    def get_models(self):
        return super().get_models() + [self.control_model_wrapped]

    def pre_run(self, model, percent_to_timestep_function):
        super().pre_run(model, percent_to_timestep_function)
        self.model_sampling_current = getattr(model, "model_sampling", None)

    def cleanup(self):
        self.model_sampling_current = None
        super().cleanup()


#: every state dict handed to load_controlnet_state_dict (its keys), for assertions
loaded_state_dicts: list[list[str]] = []


def load_controlnet_state_dict(state_dict, model=None, model_options={}):
    """A toy ControlNet from any ldm/diffusers ControlNet state dict; None for anything else."""
    loaded_state_dicts.append(sorted(state_dict))
    for key in HINT_KEYS:
        if key in state_dict:
            device = comfy.model_management.get_torch_device()
            return ControlNet(ToyControlModel(state_dict.pop(key)), load_device=device)
    return None
