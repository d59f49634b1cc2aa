"""Refit a compact net's last conv (its "head") so smooth areas come out as bicubic, with no phase grid.

The last conv is linear in the features before it, so the head that best matches chosen targets is a
ridge regression, solved in closed form: on smooth synthetic images (flat colours, gradients, soft
blobs, faint noise) the target is bicubic, whose 16 sub-pixel phases never disagree on a flat area;
on text images the target is the net's own current output (or a teacher's), so reading is kept. The
body is untouched and the file keeps the plain compact layout.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..restore.compact import CompactSR, init_as_bicubic


def smooth_images(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 3, size, size) in 0..1: flat colours, linear gradients, soft blobs; some with faint noise."""
    out = []
    for index in range(count):
        kind = index % 4
        if kind == 0:
            image = torch.rand(1, 3, 1, 1, generator=generator).expand(1, 3, size, size)
        elif kind == 1:
            a, b = torch.rand(2, 1, 3, 1, 1, generator=generator)
            ramp = torch.linspace(0, 1, size)
            ramp = ramp.view(1, 1, 1, size) if torch.rand(1, generator=generator) < 0.5 else ramp.view(1, 1, size, 1)
            image = a + (b - a) * ramp
        else:
            cells = int(torch.randint(2, 7, (1,), generator=generator))
            image = F.interpolate(torch.rand(1, 3, cells, cells, generator=generator), size=(size, size),
                                  mode="bicubic", align_corners=True)
        if index % 3 == 2:
            image = image + 0.01 * torch.randn(1, 3, size, size, generator=generator)
        out.append(image.expand(1, 3, size, size).clamp(0, 1))
    return torch.cat(out)


def _features(model: CompactSR, x: torch.Tensor) -> torch.Tensor:
    out = x
    for layer in list(model.body)[:-1]:
        out = layer(out)
    return out


@torch.no_grad()
def refit_head(model: CompactSR, smooth: torch.Tensor, text: torch.Tensor, text_targets: torch.Tensor | None = None,
               smooth_weight: float = 1.0, ridge: float = 1e-5, pixels: int = 40000,
               generator: torch.Generator | None = None) -> CompactSR:
    """A copy of `model` whose last conv is refit: bicubic on `smooth`, `text_targets` (default: the
    model's own output) on `text`. Inputs are (N, 3, h, w) net inputs; pixels within the receptive
    field of an edge are left out, and `pixels` per set are sampled for the fit."""
    model = model.eval()
    s, c = model.scale, model.channels
    bicubic = CompactSR(num_feat=c * s * s, num_conv=1, scale=s, channels=c)
    init_as_bicubic(bicubic, torch.Generator().manual_seed(0))
    last = model.body[-1]
    margin = model.num_conv + 2
    generator = generator or torch.Generator().manual_seed(0)
    blocks = []
    for images, targets, weight in ((smooth, None, smooth_weight), (text, text_targets, 1.0)):
        n, _, h, w = images.shape
        keep = torch.zeros(h, w, dtype=torch.bool)
        keep[margin:h - margin, margin:w - margin] = True
        per_image = max(1, pixels // n)
        xs, ys = [], []
        for i in range(n):
            image = images[i:i + 1]
            if targets is None:
                target = bicubic(image) if weight is smooth_weight and images is smooth else model(image)
            else:
                target = targets[i:i + 1]
            feats = F.unfold(_features(model, image), 3, padding=1)[0][:, keep.flatten()].T      # pixels, nf*9
            residual = F.pixel_unshuffle(target - F.interpolate(image, scale_factor=s, mode="nearest"), s)
            residual = residual[0][:, keep].T                                                      # pixels, 3*s*s
            pick = torch.randperm(feats.shape[0], generator=generator)[:per_image]
            xs.append(feats[pick].double())
            ys.append(residual[pick].double())
        xs, ys = torch.cat(xs), torch.cat(ys)
        blocks.append((xs, ys, weight / len(xs)))
    dim = blocks[0][0].shape[1] + 1
    gram = torch.zeros(dim, dim, dtype=torch.float64)
    cross = torch.zeros(dim, blocks[0][1].shape[1], dtype=torch.float64)
    for feats, residual, weight in blocks:
        design = torch.cat([feats, torch.ones(feats.shape[0], 1, dtype=torch.float64)], dim=1)
        gram += weight * design.T @ design
        cross += weight * design.T @ residual
    current = torch.cat([last.weight.reshape(last.weight.shape[0], -1), last.bias[:, None]], dim=1).double().T
    # ridge toward the current head, not toward zero: what the data does not pin down stays as it was
    scale = gram.diagonal().mean()
    solution = torch.linalg.solve(gram + ridge * scale * torch.eye(dim, dtype=torch.float64),
                                  cross + ridge * scale * current)
    fitted = CompactSR(model.num_feat, model.num_conv, s, c)
    fitted.load_state_dict(model.state_dict())
    head = fitted.body[-1]
    head.weight.copy_(solution[:-1].T.reshape(head.weight.shape).float())
    head.bias.copy_(solution[-1].float())
    return fitted.eval()
