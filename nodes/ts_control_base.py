"""The TS-ControlNet CONTROL_NET object: two ComfyUI ControlNet branches, one blended residual set.

It is a `comfy.controlnet.ControlBase`, so ComfyUI treats it like any ControlNet: `get_models()`
hands both branches' model patchers to the memory manager (loaded and offloaded with the UNet),
`pre_run`/`cleanup`/`copy` follow the sampler's life cycle, strength and start/end percent are
applied once to the blended residuals, and a `previous_controlnet` chain is summed as usual.
The branches keep strength 1, the full timestep range and no previous ControlNet of their own.
A shared text branch is a ComfyUI copy of the scene ControlNet: the same model and model patcher
(weights loaded once), its own hint (the restored image).
"""

from __future__ import annotations

import dataclasses

import comfy.controlnet
import comfy.model_detection

from ..glyphsr_core.sampling.fusion import BetaMap, blend_residuals, check_beta
from ..glyphsr_core.tscontrolnet import (BranchInfo, BundleError, TSBundle, check_model_match, hint_image,
                                         inspect_branch)


def _load_branch(sd: dict, name: str) -> tuple[comfy.controlnet.ControlNet, BranchInfo]:
    info = inspect_branch(sd, f"{name} branch")
    if info.layout == "diffusers" and comfy.model_detection.unet_config_from_diffusers_unet(sd) is None:
        # ComfyUI converts diffusers keys through this same lookup and fails with a bare TypeError when it finds nothing
        raise BundleError(f"the {name} branch is in diffusers layout with an architecture ComfyUI cannot convert "
                          "(it converts diffusers-layout ControlNets only for the standard SD 1.x, SD 2.x and SDXL "
                          "sizes): save this branch in the original ControlNet layout (control_model.* keys), as "
                          "`python -m glyphsr_core train` does when given an original-layout scene ControlNet")
    branch = comfy.controlnet.load_controlnet_state_dict(dict(sd))  # the loader pops keys: pass a copy
    if not isinstance(branch, comfy.controlnet.ControlNet):
        raise BundleError(f"ComfyUI did not load the {name} branch as a ControlNet "
                          f"(got {type(branch).__name__}); TS-ControlNet needs two SD-style ControlNets")
    return branch, info


def build_ts_controlnet(bundle: TSBundle) -> "TSControlNet":
    """Load both branches of a validated bundle with ComfyUI's own ControlNet loader."""
    if bundle.scene is None:
        raise BundleError("the bundle has no scene branch: pair it with a scene ControlNet file")
    scene, scene_info = _load_branch(bundle.scene, "scene")
    if bundle.shared:
        text, text_info = scene.copy(), scene_info  # same model and patcher: the weights exist once
    else:
        text, text_info = _load_branch(bundle.text, "text")
    return TSControlNet(scene, text, beta=bundle.beta, scene_info=scene_info, text_info=text_info,
                        text_hint=bundle.text_hint, shared=bundle.shared)


class TSControlNet(comfy.controlnet.ControlBase):
    def __init__(self, scene, text, beta: float = 0.5, scene_info: BranchInfo | None = None,
                 text_info: BranchInfo | None = None, text_hint: str = "lq", shared: bool = False):
        super().__init__()
        self.scene = scene
        self.text = text
        self.beta = check_beta(beta)
        self.scene_info = scene_info
        self.text_info = text_info
        #: the hint the text branch was made for ('lq', 'restored', each optionally '+glyph')
        self.text_hint = text_hint
        #: the text branch runs the scene branch's weights
        self.shared = shared
        #: set by GlyphSR Apply TS-ControlNet: a per-pixel beta, the glyph hint [B,C,H,W] and the text
        #: branch's own image hint [B,3,H,W] (the restored image; None: the scene branch's hint)
        self.beta_map: BetaMap | None = None
        self.glyph_hint = None
        self.text_image_hint = None

    @property
    def text_sees(self) -> str:
        """'lq' (the text branch sees the scene branch's hint) or 'restored' (the restored image R)."""
        return hint_image(self.text_hint)

    def describe_text_branch(self) -> str:
        """For messages: what the text branch is."""
        if self.shared:
            return "this TS-ControlNet's shared text branch (the scene ControlNet's weights)"
        return f"this TS-ControlNet's text branch (text_hint {self.text_hint!r})"

    @property
    def glyph_channels(self) -> int:
        """Hint channels the text branch takes beyond the scene branch's (0: text_hint 'lq')."""
        if self.scene_info is None or self.text_info is None:
            return 0
        return self.text_info.hint_channels - self.scene_info.hint_channels

    def with_text_inputs(self, beta: float, beta_map: BetaMap | None = None, glyph=None,
                         text_image=None) -> "TSControlNet":
        """A copy with its own beta (or beta map), glyph hint and text-branch image; call before set_cond_hint."""
        c = self.copy()
        c.beta = check_beta(beta)
        c.beta_map = beta_map
        c.glyph_hint = glyph
        c.text_image_hint = text_image
        return c

    # ---------------------------------------------------------------- ControlBase interface

    def set_cond_hint(self, cond_hint, strength=1.0, timestep_percent_range=(0.0, 1.0), vae=None, extra_concat=[]):
        if self.glyph_channels and self.glyph_hint is None:
            raise BundleError(f"{self.describe_text_branch()} expects a glyph map as well: apply it with "
                              f"'GlyphSR Apply TS-ControlNet' and connect glyph")
        if self.text_sees == "restored" and self.text_image_hint is None:
            raise BundleError(f"{self.describe_text_branch()} sees the restored image: apply it with "
                              f"'GlyphSR Apply TS-ControlNet' and connect text_image")
        super().set_cond_hint(cond_hint, strength, timestep_percent_range, vae=vae, extra_concat=extra_concat)
        # the branches run unscaled over the whole range: strength and range apply once, to the blend
        self.scene.set_cond_hint(cond_hint, 1.0, (0.0, 1.0), vae=vae, extra_concat=list(extra_concat))
        text_hint = cond_hint if self.text_sees == "lq" else self.text_image_hint
        text_extra = ([self.glyph_hint] if self.glyph_hint is not None else []) + list(extra_concat)
        self.text.set_cond_hint(text_hint, 1.0, (0.0, 1.0), vae=vae, extra_concat=text_extra)
        return self

    def pre_run(self, model, percent_to_timestep_function):
        super().pre_run(model, percent_to_timestep_function)
        unet_config = getattr(getattr(model, "model_config", None), "unet_config", None)
        if isinstance(unet_config, dict):
            for info, name in ((self.scene_info, "scene"), (self.text_info, "text")):
                if info is not None:
                    check_model_match(info, unet_config.get("context_dim"), unet_config.get("adm_in_channels"), name)
        self.scene.pre_run(model, percent_to_timestep_function)
        self.text.pre_run(model, percent_to_timestep_function)

    def get_control(self, x_noisy, t, cond, batched_number, transformer_options):
        control_prev = None
        if self.previous_controlnet is not None:
            control_prev = self.previous_controlnet.get_control(x_noisy, t, cond, batched_number, transformer_options)
        if self.timestep_range is not None:
            if t[0] > self.timestep_range[0] or t[0] < self.timestep_range[1]:
                return control_prev
        constant = self.beta if self.beta_map is None else self.beta_map.constant
        # a branch with weight 0 everywhere is not run at all
        scene = {} if constant == 1.0 else self.scene.get_control(x_noisy, t, cond, batched_number, transformer_options)
        text = {} if constant == 0.0 else self.text.get_control(x_noisy, t, cond, batched_number, transformer_options)
        blended = blend_residuals(scene or {}, text or {}, beta=self.beta, beta_map=self.beta_map,
                                  chunks=batched_number)
        return self.control_merge(blended, control_prev, None)

    def get_models(self):
        models = []
        for model in super().get_models() + self.scene.get_models() + self.text.get_models():
            if not any(model is m for m in models):  # a shared text branch hands over the scene's patcher once
                models.append(model)
        return models

    def inference_memory_requirements(self, dtype):
        return (super().inference_memory_requirements(dtype) + self.scene.inference_memory_requirements(dtype)
                + self.text.inference_memory_requirements(dtype))

    def cleanup(self):
        self.scene.cleanup()
        self.text.cleanup()
        if self.beta_map is not None:
            self.beta_map.clear()
        super().cleanup()

    def copy(self):
        c = TSControlNet(self.scene.copy(), self.text.copy(), beta=self.beta, scene_info=self.scene_info,
                         text_info=self.text_info, text_hint=self.text_hint, shared=self.shared)
        c.beta_map = dataclasses.replace(self.beta_map, _cache={}) if self.beta_map is not None else None
        c.glyph_hint = self.glyph_hint
        c.text_image_hint = self.text_image_hint
        self.copy_to(c)
        return c
