"""Load the diffusers components GLYPH-SR needs, from local files only.

A base model is a diffusers folder (`model_index.json`, `unet/`, `vae/`, `text_encoder/` ...) or a
single-file checkpoint plus `config=` a local diffusers folder of the same family (configs and
tokenizers; its weights are not needed). A ControlNet is a diffusers folder, or one `.safetensors`
file in diffusers or original (`control_model.*` / `input_blocks.*`) layout; its architecture is
derived from the base UNet, so no config file is needed beside it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InputNotFoundError, InvalidInputError, MissingPackageError
from . import SCHEDULERS

logger = logging.getLogger(__name__)

FAMILIES = ("sd15", "sdxl")
#: key that marks a diffusers-layout ControlNet (ComfyUI detects the layout by it too)
DIFFUSERS_CONTROLNET_KEY = "controlnet_cond_embedding.conv_in.weight"


class MissingWeightsError(InputNotFoundError):
    """A model file or folder is missing; the message says exactly what to provide."""


class ModelLoadError(InvalidInputError):
    """A model file exists but cannot be used (wrong layout, wrong family, shape mismatch)."""


def require_diffusers():
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingPackageError(
            "GLYPH-SR's headless pipeline and trainer need `diffusers` and `transformers`: "
            "pip install diffusers transformers accelerate") from exc


@dataclass
class BaseModel:
    """The frozen parts of a Stable Diffusion model (SD1.5 or SDXL family)."""

    family: str
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler: Any
    text_encoder_2: Any = None
    tokenizer_2: Any = None

    def modules(self) -> list[torch.nn.Module]:
        return [m for m in (self.unet, self.vae, self.text_encoder, self.text_encoder_2) if m is not None]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "BaseModel":
        for module in self.modules():
            module.to(device=device, dtype=dtype)
        return self

    def freeze(self) -> "BaseModel":
        for module in self.modules():
            module.requires_grad_(False)
            module.eval()
        return self

    def controlnet_pipeline(self, controlnet: Any) -> Any:
        """The matching diffusers ControlNet pipeline around these components (no safety checker)."""
        from diffusers import StableDiffusionControlNetPipeline, StableDiffusionXLControlNetPipeline

        if self.family == "sdxl":
            return StableDiffusionXLControlNetPipeline(
                vae=self.vae, text_encoder=self.text_encoder, text_encoder_2=self.text_encoder_2,
                tokenizer=self.tokenizer, tokenizer_2=self.tokenizer_2, unet=self.unet, controlnet=controlnet,
                scheduler=self.scheduler, add_watermarker=False)
        return StableDiffusionControlNetPipeline(
            vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer, unet=self.unet,
            controlnet=controlnet, scheduler=self.scheduler, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write a diffusers folder (model_index.json + components) that `load_base` reads back."""
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        if self.family == "sdxl":
            pipe = StableDiffusionXLPipeline(vae=self.vae, text_encoder=self.text_encoder,
                                             text_encoder_2=self.text_encoder_2, tokenizer=self.tokenizer,
                                             tokenizer_2=self.tokenizer_2, unet=self.unet, scheduler=self.scheduler,
                                             add_watermarker=False)
        else:
            pipe = StableDiffusionPipeline(vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
                                           unet=self.unet, scheduler=self.scheduler, safety_checker=None,
                                           feature_extractor=None, requires_safety_checker=False)
        pipe.save_pretrained(str(folder), safe_serialization=True)
        return Path(folder)


def family_of_folder(folder: Path) -> str:
    index = folder / "model_index.json"
    if not index.is_file():
        raise MissingWeightsError(
            f"{folder} is not a diffusers model folder: it has no model_index.json. Provide a folder with "
            "model_index.json, unet/, vae/, text_encoder/, tokenizer/ and scheduler/ (SDXL also text_encoder_2/, "
            "tokenizer_2/), or a single-file checkpoint (.safetensors) together with such a folder as its config")
    names = json.loads(index.read_text(encoding="utf-8"))
    return "sdxl" if "text_encoder_2" in names else "sd15"


def _check_folder(folder: Path, family: str, need_weights: bool) -> None:
    parts = ["unet", "vae", "text_encoder", "tokenizer", "scheduler"]
    if family == "sdxl":
        parts += ["text_encoder_2", "tokenizer_2"]
    missing = [p for p in parts if not (folder / p).is_dir()]
    if need_weights:
        for part in ("unet", "vae", "text_encoder") + (("text_encoder_2",) if family == "sdxl" else ()):
            if (folder / part).is_dir() and not any((folder / part).glob("*.safetensors")):
                missing.append(f"{part}/*.safetensors")
    if missing:
        raise MissingWeightsError(f"the {family} model folder {folder} lacks: {', '.join(missing)}")


def family_of_checkpoint(path: Path) -> str:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        keys = f.keys()
        if any(k.startswith("conditioner.embedders.1.") for k in keys):
            return "sdxl"
        if any(k.startswith("model.diffusion_model.") for k in keys):
            return "sd15"
    raise ModelLoadError(f"{path} is not a Stable Diffusion single-file checkpoint (no model.diffusion_model.* keys)")


def load_base(path: str | Path, config: str | Path | None = None, dtype: torch.dtype = torch.float32) -> BaseModel:
    """Base model from a diffusers folder, or from a single-file checkpoint with a local `config` folder."""
    require_diffusers()
    path = Path(path)
    if not path.exists():
        raise MissingWeightsError(
            f"base model not found: {path}. Provide a diffusers folder (model_index.json, unet/, vae/, text_encoder/, "
            "tokenizer/, scheduler/) or a .safetensors checkpoint plus --base-config pointing at such a folder")
    if path.is_dir():
        family = family_of_folder(path)
        _check_folder(path, family, need_weights=True)
        return _load_folder(path, family, dtype)
    if path.suffix.lower() != ".safetensors":
        raise ModelLoadError(f"base checkpoint {path} must be a .safetensors file (pickled .ckpt files are not loaded)")
    if config is None:
        raise MissingWeightsError(
            f"loading the single-file checkpoint {path} offline needs a local diffusers folder of the same family "
            "for its configs and tokenizers (model_index.json, */config.json, tokenizer/): pass it as --base-config "
            "(config: in the training YAML)")
    config = Path(config)
    family = family_of_folder(config)
    _check_folder(config, family, need_weights=False)
    if family_of_checkpoint(path) != family:
        raise ModelLoadError(f"{path} is a {family_of_checkpoint(path)} checkpoint but the config folder {config} is {family}")
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    kwargs: dict[str, Any] = {"config": str(config), "local_files_only": True, "torch_dtype": dtype}
    if family == "sd15":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    pipe = cls.from_single_file(str(path), **kwargs)
    return BaseModel(family=family, unet=pipe.unet, vae=pipe.vae, text_encoder=pipe.text_encoder,
                     tokenizer=pipe.tokenizer, scheduler=pipe.scheduler,
                     text_encoder_2=getattr(pipe, "text_encoder_2", None), tokenizer_2=getattr(pipe, "tokenizer_2", None))


def _load_folder(folder: Path, family: str, dtype: torch.dtype) -> BaseModel:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel, CLIPTextModelWithProjection

    common = {"local_files_only": True}
    scheduler_config = DDPMScheduler.load_config(str(folder), subfolder="scheduler", **common)
    scheduler = _scheduler_class(scheduler_config).from_config(scheduler_config)
    base = BaseModel(
        family=family,
        unet=UNet2DConditionModel.from_pretrained(str(folder), subfolder="unet", torch_dtype=dtype, **common),
        vae=AutoencoderKL.from_pretrained(str(folder), subfolder="vae", torch_dtype=dtype, **common),
        text_encoder=CLIPTextModel.from_pretrained(str(folder), subfolder="text_encoder", dtype=dtype, **common),
        tokenizer=AutoTokenizer.from_pretrained(str(folder), subfolder="tokenizer", **common),
        scheduler=scheduler,
    )
    if family == "sdxl":
        base.text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(
            str(folder), subfolder="text_encoder_2", dtype=dtype, **common)
        base.tokenizer_2 = AutoTokenizer.from_pretrained(str(folder), subfolder="tokenizer_2", **common)
    return base


def _scheduler_class(config: dict) -> Any:
    import diffusers

    return getattr(diffusers, config.get("_class_name", "DDPMScheduler"), diffusers.DDPMScheduler)


def make_scheduler(name: str, base_config: dict) -> Any:
    """An inference scheduler built from the base model's scheduler config (betas, prediction type)."""
    import diffusers

    classes = {
        "euler": (diffusers.EulerDiscreteScheduler, {}),
        "euler_a": (diffusers.EulerAncestralDiscreteScheduler, {}),
        "ddim": (diffusers.DDIMScheduler, {}),
        "dpmpp_2m": (diffusers.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
        "unipc": (diffusers.UniPCMultistepScheduler, {}),
        "ddpm": (diffusers.DDPMScheduler, {}),
    }
    if name not in classes:
        raise InvalidInputError(f"scheduler must be one of {', '.join(SCHEDULERS)}; got {name!r}")
    cls, extra = classes[name]
    return cls.from_config(dict(base_config), **extra)


def encode_images(vae: Any, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Images in -1..1 -> scaled latents, as the diffusers pipelines scale them (SDXL-style
    latents_mean/std honoured). Samples the latent distribution with `generator` (global RNG if None)."""
    latents = vae.encode(images.to(vae.dtype)).latent_dist.sample(generator)
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is not None and std is not None:
        mean = torch.tensor(mean).view(1, -1, 1, 1).to(latents)
        std = torch.tensor(std).view(1, -1, 1, 1).to(latents)
        return (latents - mean) * vae.config.scaling_factor / std
    return latents * vae.config.scaling_factor


# ------------------------------------------------------------------------------------------------
# ControlNets
# ------------------------------------------------------------------------------------------------

def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        for key in f.keys():
            tensors[key] = f.get_tensor(key)
    return tensors, metadata


def conditioning_layout(state_dict: dict[str, torch.Tensor]) -> tuple[int, tuple[int, ...]]:
    """(hint channels, conditioning_embedding_out_channels) of a diffusers-layout ControlNet state dict."""
    conv_in = state_dict[DIFFUSERS_CONTROLNET_KEY]
    channels = [int(conv_in.shape[0])]
    i = 1
    while f"controlnet_cond_embedding.blocks.{i}.weight" in state_dict:
        channels.append(int(state_dict[f"controlnet_cond_embedding.blocks.{i}.weight"].shape[0]))
        i += 2
    return int(conv_in.shape[1]), tuple(channels)


def to_diffusers_layout(state_dict: dict[str, torch.Tensor], unet: Any) -> dict[str, torch.Tensor]:
    """A ControlNet state dict in diffusers layout (original `control_model.*` / ldm files are converted)."""
    if DIFFUSERS_CONTROLNET_KEY in state_dict:
        return state_dict
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    if not any(k.startswith(("control_model.input_hint_block.", "input_hint_block.")) for k in state_dict):
        raise ModelLoadError(
            "not a ControlNet state dict: expected diffusers keys (controlnet_cond_embedding.*) or original keys "
            "(input_hint_block.*, zero_convs.*, optionally prefixed control_model.)")
    if "time_embed.0.weight" not in state_dict and not any(k.startswith("control_model.") for k in state_dict):
        raise ModelLoadError("original-layout ControlNet without time_embed.* or control_model.* keys")
    converted = convert_controlnet_checkpoint(state_dict, dict(unet.config))
    # the class-embedding (SDXL "label_emb") keys are mapped by the converter only for its own configs
    for src, dst in (("label_emb.0.0", "add_embedding.linear_1"), ("label_emb.0.2", "add_embedding.linear_2")):
        for kind in ("weight", "bias"):
            for prefix in ("", "control_model."):
                if f"{prefix}{src}.{kind}" in state_dict:
                    converted[f"{dst}.{kind}"] = state_dict[f"{prefix}{src}.{kind}"]
    return {k: v for k, v in converted.items() if v is not None}


def controlnet_from_state_dict(state_dict: dict[str, torch.Tensor], unet: Any, name: str = "ControlNet") -> Any:
    """A ControlNetModel with the base UNet's architecture and these weights (strict: every key must fit)."""
    from diffusers import ControlNetModel

    state_dict = to_diffusers_layout(state_dict, unet)
    hint_channels, embed_channels = conditioning_layout(state_dict)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=embed_channels,
                                           load_weights_from_unet=False, conditioning_channels=hint_channels)
    try:
        controlnet.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{name} does not match the base model's UNet (wrong family or size?): {exc}") from exc
    return controlnet if controlnet.dtype == unet.dtype else controlnet.to(dtype=unet.dtype)


def load_controlnet(path: str | Path, unet: Any, what: str = "ControlNet") -> Any:
    """A ControlNet from a diffusers folder or a .safetensors file (diffusers or original layout)."""
    require_diffusers()
    path = Path(path)
    if not path.exists():
        raise MissingWeightsError(f"{what} not found: {path}. Provide a ControlNet .safetensors file for this base "
                                  "model (diffusers or original layout) or a diffusers ControlNet folder")
    if path.is_dir():
        from diffusers import ControlNetModel

        if not (path / "config.json").is_file():
            raise MissingWeightsError(f"{what} folder {path} lacks config.json (and diffusion_pytorch_model.safetensors)")
        return ControlNetModel.from_pretrained(str(path), local_files_only=True, torch_dtype=unet.dtype)
    if path.suffix.lower() != ".safetensors":
        raise ModelLoadError(f"{what} {path} must be a .safetensors file (pickled files are not loaded)")
    state_dict, _ = read_safetensors(path)
    return controlnet_from_state_dict(state_dict, unet, name=f"{what} {path}")


def controlnet_state_dict(controlnet: Any) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies of a ControlNetModel's weights in diffusers layout."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in controlnet.state_dict().items()}
