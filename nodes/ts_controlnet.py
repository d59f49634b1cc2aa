"""TS-ControlNet nodes: load a scene + text ControlNet pair, and attach it to the four prompt conds."""

from __future__ import annotations

import logging

import folder_paths

from ..glyphsr_core.sampling.fusion import beta_map_from_mask, check_beta
from ..glyphsr_core.tscontrolnet import assemble_branches
from ..glyphsr_core.tscontrolnet import hints
from .runtime import CATEGORY
from .ts_control_base import TSControlNet, build_ts_controlnet

NO_FILE = "None"
#: second_control_net choice: the text branch runs the scene ControlNet's weights on the restored image
SHARED = "shared: scene weights"

logger = logging.getLogger(__name__)


class TSControlNetLoader:
    DESCRIPTION = (
        "Loads a TS-ControlNet: a scene branch (any SR/tile ControlNet) and a text branch of the same "
        "architecture whose control residuals are blended, (1 - beta) * scene + beta * text. Choose a bundle "
        "file, or a text-only bundle plus your scene ControlNet, or two ControlNet files (scene first), or your "
        "scene ControlNet with 'shared: scene weights': no training and no second copy in memory; the text "
        "branch runs the scene weights on the restored image (connect text_image when applying it)."
    )

    @classmethod
    def INPUT_TYPES(cls):
        files = folder_paths.get_filename_list("controlnet")
        return {
            "required": {
                "control_net_name": (files, {"tooltip": "A TS-ControlNet bundle, or the scene ControlNet "
                                                        "(from models/controlnet)."}),
                "second_control_net": ([NO_FILE, SHARED] + files, {
                    "tooltip": "The other branch: your scene ControlNet for a text-only bundle, or the text branch "
                               "(bundle or ControlNet) when the first file is a plain scene ControlNet. "
                               f"'{SHARED}': the text branch is the scene ControlNet itself (weights loaded "
                               "once) fed the restored image, so it needs no training; a trained text branch "
                               "knows text better."}),
                "beta": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 1.0, "step": 0.01,
                                   "tooltip": "Text-branch weight 0..1; -1 keeps the bundle's (0.5 for two plain "
                                              "ControlNet files)."}),
            }
        }

    RETURN_TYPES = ("CONTROL_NET",)
    RETURN_NAMES = ("control_net",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    @classmethod
    def VALIDATE_INPUTS(cls, control_net_name: str, second_control_net: str = NO_FILE):
        """Before the queue runs: a missing file is reported on this node with the folders searched
        (ComfyUI's own check says only 'not in list'); the rest of the graph still runs."""
        for name, value in (("control_net_name", control_net_name), ("second_control_net", second_control_net)):
            if name == "second_control_net" and value in (NO_FILE, SHARED):
                continue
            if not value or folder_paths.get_full_path("controlnet", value) is None:
                folders = ", ".join(folder_paths.get_folder_paths("controlnet"))
                return (f"{name} '{value}' is not in the controlnet folder (looked in: {folders}); put the file "
                        f"there (the workflow's Models note says where to get it) or pick another")
        return True

    def load(self, control_net_name: str, second_control_net: str = NO_FILE, beta: float = -1.0):
        first = folder_paths.get_full_path_or_raise("controlnet", control_net_name)
        second = None
        if second_control_net and second_control_net not in (NO_FILE, SHARED):
            second = folder_paths.get_full_path_or_raise("controlnet", second_control_net)
        bundle = assemble_branches(first, second, shared=second_control_net == SHARED)
        if beta >= 0:
            bundle.beta = check_beta(beta, "beta")
        return (build_ts_controlnet(bundle),)


class ApplyTSControlNet:
    DESCRIPTION = (
        "Attaches a TS-ControlNet to the scene and text prompt pairs (like Apply ControlNet). The scene branch "
        "sees image (the upscaled LQ); the text branch sees what it was made for: text_image (the restored "
        "image) for the shared branch and 'restored' bundles, else image. A text_mask gives beta_text inside "
        "the text and beta_scene outside; a glyph map feeds '+glyph' text branches. The UNet runs once per step."
    )

    @classmethod
    def INPUT_TYPES(cls):
        beta_tip = " Negative: the loader's beta."
        return {
            "required": {
                "scene_positive": ("CONDITIONING",),
                "scene_negative": ("CONDITIONING",),
                "text_positive": ("CONDITIONING",),
                "text_negative": ("CONDITIONING",),
                "control_net": ("CONTROL_NET", {"tooltip": "From GlyphSR Load TS-ControlNet."}),
                "image": ("IMAGE", {"tooltip": "The LQ image upscaled to the output size: the scene branch's hint "
                                               "(and the text branch's, for 'lq' text branches)."}),
                "beta_text": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 1.0, "step": 0.01,
                                        "tooltip": "Text-branch weight inside text_mask, or everywhere when no mask "
                                                   "is connected." + beta_tip}),
                "beta_scene": ("FLOAT", {"default": 0.0, "min": -1.0, "max": 1.0, "step": 0.01,
                                         "tooltip": "Text-branch weight outside text_mask (unused without a mask); "
                                                    "0: the scene branch alone outside the text." + beta_tip}),
                "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}),
                "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}),
                "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001}),
            },
            "optional": {
                "text_image": ("IMAGE", {"tooltip": "The restored image (GlyphSR Text Restore), same size as image: "
                                                    "the hint of the shared text branch and of 'restored' bundles "
                                                    "(unused by 'lq' text branches)."}),
                "glyph": ("IMAGE", {"tooltip": "Glyph map of the image (GlyphSR Glyph Render), for '+glyph' text "
                                               "branches (unused by the others); same size as image."}),
                "text_mask": ("MASK", {"tooltip": "Where the text is (e.g. GlyphSR OCR Extract's mask), same size as "
                                                  "image."}),
                "vae": ("VAE",),
            },
        }

    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("scene_positive", "scene_negative", "text_positive", "text_negative")
    FUNCTION = "apply"
    CATEGORY = CATEGORY

    def apply(self, scene_positive, scene_negative, text_positive, text_negative, control_net, image,
              beta_text: float, beta_scene: float, strength: float, start_percent: float, end_percent: float,
              text_image=None, glyph=None, text_mask=None, vae=None):
        conds = (scene_positive, scene_negative, text_positive, text_negative)
        if not isinstance(control_net, TSControlNet):
            raise TypeError(f"'control_net' must come from GlyphSR Load TS-ControlNet (got "
                            f"{type(control_net).__name__}); use Apply ControlNet for a plain ControlNet")
        hint = hints.lq_hint(image)
        text_hint = None
        if control_net.text_sees == "restored":
            text_hint = hints.restored_hint(text_image, image, control_net.describe_text_branch())
        elif text_image is not None:
            logger.info("GlyphSR Apply TS-ControlNet: text_image is not used, %s sees image",
                        control_net.describe_text_branch())
        if glyph is not None and not control_net.glyph_channels:
            logger.info("GlyphSR Apply TS-ControlNet: glyph is not used, %s takes no glyph map",
                        control_net.describe_text_branch())
        glyph_extra = hints.glyph_hint(glyph, image, control_net.glyph_channels)
        mask = hints.text_mask(text_mask, image)
        if strength == 0:
            return conds
        beta_text = control_net.beta if beta_text < 0 else check_beta(beta_text, "beta_text")
        beta_scene = control_net.beta if beta_scene < 0 else check_beta(beta_scene, "beta_scene")
        beta_map = beta_map_from_mask(mask, beta_text, beta_scene) if mask is not None else None
        template = control_net.with_text_inputs(beta_text, beta_map, glyph_extra, text_hint)

        cnets = {}
        out = []
        for conditioning in conds:
            attached = []
            for embedding, options in conditioning:
                d = options.copy()
                prev = d.get("control", None)
                c_net = cnets.get(prev)
                if c_net is None:
                    c_net = template.copy().set_cond_hint(hint, strength, (start_percent, end_percent), vae=vae)
                    c_net.set_previous_controlnet(prev)
                    cnets[prev] = c_net
                d["control"] = c_net
                d["control_apply_to_uncond"] = False
                attached.append([embedding, d])
            out.append(attached)
        return tuple(out)


NODE_CLASS_MAPPINGS = {
    "GlyphSR_TSControlNetLoader": TSControlNetLoader,
    "GlyphSR_ApplyTSControlNet": ApplyTSControlNet,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "GlyphSR_TSControlNetLoader": "GlyphSR Load TS-ControlNet",
    "GlyphSR_ApplyTSControlNet": "GlyphSR Apply TS-ControlNet",
}
