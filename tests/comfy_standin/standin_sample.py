"""Stand-in for comfy.sample (tests only): seeded noise and the empty-latent channel fix."""

from __future__ import annotations

import torch


def prepare_noise(latent_image, seed, noise_inds=None):
    """Noise from a CPU generator seeded with `seed`; with batch indices, one draw per index."""
    generator = torch.manual_seed(seed)
    if noise_inds is None:
        return torch.randn(latent_image.size(), dtype=latent_image.dtype, generator=generator, device="cpu")
    draws = [torch.randn([1, *latent_image.shape[1:]], dtype=latent_image.dtype, generator=generator, device="cpu")
             for _ in range(max(noise_inds) + 1)]
    return torch.cat([draws[i] for i in noise_inds])


def fix_empty_latent_channels(model, latent_image, downscale_ratio_spacial=None):
    """An all-zero latent gets the model's channel count; anything else is returned as is."""
    channels = model.get_model_object("latent_format").latent_channels
    if torch.count_nonzero(latent_image) == 0 and latent_image.shape[1] != channels:
        latent_image = latent_image[:, :1].repeat(1, channels, 1, 1)
    return latent_image
