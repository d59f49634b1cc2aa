"""Random-initialised tiny Stable Diffusion models (SD1.5 and SDXL layouts) for CI and smoke runs.

They have the real architectures at toy widths, a real CLIP tokenizer (byte-level vocabulary, no
merges) and a VAE with the real down-sampling factor of 8, so every code path (prompt encoding,
SDXL added conditions, ControlNet hints, VAE round trips, saving and loading) runs as with full
models, in well under a second per step on a CPU. Their outputs are noise.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from .models import FAMILIES, BaseModel, require_diffusers
from .models import controlnet_state_dict

TOKENS = 77  # tokenizer / text encoder context length (as CLIP)
TINY_CONDITIONING_CHANNELS = (8, 16, 16, 16)  # 3 stride-2 stages: hint at image size -> latent size


def _tokenizer(max_length: int = TOKENS) -> Any:
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for token in alphabet + [a + "</w>" for a in alphabet] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab[token] = len(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        tokenizer = CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"),
                                  model_max_length=max_length, pad_token="<|endoftext|>")
    return tokenizer


def _text_encoder(vocab_size: int, hidden: int, projection: int | None) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2,
                            num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=TOKENS,
                            projection_dim=projection or hidden, bos_token_id=vocab_size - 2,
                            eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1)
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def build_tiny_base(family: str = "sd15", seed: int = 0, *, text_width: int = 32, text_width_2: int | None = None,
                    unet_config: dict[str, Any] | None = None) -> BaseModel:
    """A tiny random base model of `family` ("sd15" or "sdxl"), deterministic for a seed.

    `text_width` (the text encoder width = SD1.5 cross-attention width) and `unet_config` (UNet
    keyword overrides) let tests mirror another tiny model, e.g. the integration harness's
    ComfyUI-built UNet (320 channels, one level, cross-attention width 768). SDXL: the second text
    encoder is `text_width_2` wide (default `text_width`); cross-attention width is their sum.
    """
    require_diffusers()
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}; got {family!r}")
    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    hidden = int(text_width)
    unet_kwargs: dict[str, Any] = dict(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        norm_num_groups=8, attention_head_dim=4)
    base = BaseModel(family=family, unet=None, vae=None, text_encoder=_text_encoder(len(tokenizer), hidden, None),
                     tokenizer=tokenizer, scheduler=None)
    if family == "sdxl":
        hidden_2 = int(text_width_2 or hidden)
        base.text_encoder_2 = _text_encoder(len(tokenizer), hidden_2, projection=hidden_2)
        base.tokenizer_2 = _tokenizer()
        time_dim = int((unet_config or {}).get("addition_time_embed_dim", 8))
        unet_kwargs.update(cross_attention_dim=hidden + hidden_2, addition_embed_type="text_time",
                           addition_time_embed_dim=time_dim, projection_class_embeddings_input_dim=6 * time_dim + hidden_2,
                           use_linear_projection=True, transformer_layers_per_block=(1, 1))
    else:
        unet_kwargs.update(cross_attention_dim=hidden)
    unet_kwargs.update(unet_config or {})
    base.unet = UNet2DConditionModel(**unet_kwargs)
    base.vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16),
                             down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                             layers_per_block=1, norm_num_groups=8, sample_size=64)
    base.scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                   beta_schedule="scaled_linear", clip_sample=False, steps_offset=1,
                                   prediction_type="epsilon")
    return base.freeze()


#: UNet keywords of the real SD1.5 / SDXL UNets (for random full-size models: memory and speed benchmarks)
FULL_SIZE_UNET = {
    "sd15": dict(block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, attention_head_dim=8,
                 norm_num_groups=32, sample_size=64,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3),
    "sdxl": dict(block_out_channels=(320, 640, 1280), layers_per_block=2, attention_head_dim=(5, 10, 20),
                 norm_num_groups=32, sample_size=128, transformer_layers_per_block=(1, 2, 10),
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 addition_time_embed_dim=256),
}
FULL_SIZE_CONDITIONING_CHANNELS = (16, 32, 96, 256)


def build_full_size_random_base(family: str = "sd15", seed: int = 0) -> BaseModel:
    """Random weights at the real SD1.5 / SDXL sizes (UNet, VAE, text encoder widths): for measuring
    training memory and speed without downloading anything. Text encoders keep 2 layers (frozen,
    run once per step: their depth barely matters for training memory)."""
    from diffusers import AutoencoderKL

    base = build_tiny_base(family, seed, text_width=768, text_width_2=1280, unet_config=FULL_SIZE_UNET[family])
    base.vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                             down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                             scaling_factor=0.13025 if family == "sdxl" else 0.18215)
    return base.freeze()


def build_tiny_controlnet(unet: Any, seed: int = 0, conditioning_channels: int = 3, zero_scale: float = 0.5,
                          embedding_channels: tuple[int, ...] = TINY_CONDITIONING_CHANNELS) -> Any:
    """A tiny ControlNet for `unet` with random weights; its zero convs are NOT zero (scaled random),
    so it visibly changes the UNet's output like a trained ControlNet does."""
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=embedding_channels,
                                           load_weights_from_unet=True, conditioning_channels=conditioning_channels)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        zero_convs = list(controlnet.controlnet_down_blocks) + [controlnet.controlnet_mid_block,
                                                                controlnet.controlnet_cond_embedding.conv_out]
        for conv in zero_convs:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * zero_scale / conv.weight[0].numel() ** 0.5)
            conv.bias.zero_()
    return controlnet


def write_tiny_models(folder: str | Path, family: str = "sd15", seed: int = 0) -> dict[str, Path]:
    """Write a tiny base (diffusers folder) and a tiny scene ControlNet (.safetensors) into `folder`.

    Returns {"base": folder, "scene_controlnet": file}. Files already there are reused.
    """
    from safetensors.torch import save_file


    folder = Path(folder)
    base_dir, scene_file = folder / f"tiny_{family}", folder / f"tiny_{family}_scene_controlnet.safetensors"
    if not (base_dir / "model_index.json").is_file() or not scene_file.is_file():
        base = build_tiny_base(family, seed)
        base.save_pretrained(base_dir)
        save_file(controlnet_state_dict(build_tiny_controlnet(base.unet, seed + 7)), str(scene_file))
    return {"base": base_dir, "scene_controlnet": scene_file}
