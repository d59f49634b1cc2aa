"""The text restorer's network: Real-ESRGAN's compact VGG-style SR net (SRVGGNetCompact).

The state-dict layout (`body.0` ... `body.N`, PReLU activations, pixel shuffle, nearest skip) is the
one spandrel detects as "RealESRGAN Compact", so ComfyUI's core *Load Upscale Model* loads our file
too. The module is our own restatement, so the core library needs no spandrel (spandrel imports
torchvision, which does not install beside every torch build).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import InvalidInputError


class CompactSR(nn.Module):
    """conv3x3 + PReLU, `num_conv` x (conv3x3 + PReLU), conv3x3 to 3*s*s channels, pixel shuffle, + nearest(x)."""

    def __init__(self, num_feat: int = 64, num_conv: int = 8, scale: int = 4, channels: int = 3) -> None:
        super().__init__()
        self.num_feat, self.num_conv, self.scale, self.channels = num_feat, num_conv, scale, channels
        layers: list[nn.Module] = [nn.Conv2d(channels, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        layers.append(nn.Conv2d(num_feat, channels * scale * scale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(scale)

    @property
    def receptive_field(self) -> int:
        """Input pixels on each side that one output pixel depends on (one per 3x3 conv)."""
        return self.num_conv + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.scale, mode="nearest")


def pillow_bicubic_taps(scale: int) -> np.ndarray:
    """Pillow's bicubic up-scaling weights: `taps[phase, offset + 2]` for offsets -2..2 (interior pixels).

    Measured from Pillow itself (a unit impulse resized in float mode), so the init reproduces the
    `bicubic` baseline that `evaluate` scores, not a textbook kernel with another `a`.
    """
    from PIL import Image

    width, centre = 9, 4
    taps = np.zeros((scale, 5), dtype=np.float64)
    for offset in range(-2, 3):
        impulse = np.zeros((1, width), dtype=np.float32)
        impulse[0, centre + offset] = 1.0
        up = np.asarray(Image.fromarray(impulse, mode="F").resize((width * scale, 1), Image.Resampling.BICUBIC))
        taps[:, offset + 2] = up[0, centre * scale: centre * scale + scale]
    return taps


def _split_offset(offset: int) -> tuple[int, int]:
    """Write an offset in -2..2 as first-conv shift + second-conv shift, each in -1..1."""
    return {-2: (-1, -1), -1: (0, -1), 0: (0, 0), 1: (0, 1), 2: (1, 1)}[offset]


@torch.no_grad()
def init_as_bicubic(model: CompactSR, generator: torch.Generator | None = None) -> None:
    """Set the weights so the network computes exactly Pillow's bicubic up-scaling (away from borders).

    Channel layout: the first conv copies the 3x3 neighbourhood of each colour (27 linear channels);
    the second conv sums them into the 3*s*s bicubic-minus-nearest sub-pixel values ("carriers");
    later convs pass the carriers through; the last conv hands them to the pixel shuffle. Carrier
    activations have PReLU slope 1 (linear). The remaining channels are free features with ordinary
    random init whose weights into the carriers and the output start at zero, so training begins
    from bicubic and learns only what improves on it.
    """
    s, c, nf = model.scale, model.channels, model.num_feat
    carriers = c * s * s
    if model.num_conv < 1 or nf < max(carriers, 9 * c):
        raise InvalidInputError(f"bicubic init needs num_conv >= 1 and num_feat >= {max(carriers, 9 * c)}, "
                         f"got num_conv={model.num_conv}, num_feat={nf}")
    convs = [m for m in model.body if isinstance(m, nn.Conv2d)]
    prelus = [m for m in model.body if isinstance(m, nn.PReLU)]
    for conv in convs:
        nn.init.kaiming_normal_(conv.weight, a=0.25, generator=generator)
        conv.weight.mul_(0.1)
        conv.bias.zero_()
    first, second, last = convs[0], convs[1], convs[-1]
    copies = 9 * c  # channel (colour, dy, dx) = x[colour, y + dy, x + dx]
    first.weight[:copies] = 0.0
    for colour in range(c):
        for dy in range(3):
            for dx in range(3):
                first.weight[colour * 9 + dy * 3 + dx, colour, dy, dx] = 1.0
    prelus[0].weight[:copies] = 1.0

    taps = pillow_bicubic_taps(s)
    second.weight[:carriers] = 0.0
    for colour in range(c):
        for py in range(s):
            for px in range(s):
                carrier = colour * s * s + py * s + px
                for oy in range(-2, 3):
                    for ox in range(-2, 3):
                        weight = taps[py, oy + 2] * taps[px, ox + 2]
                        if weight == 0.0:
                            continue
                        (ay, by), (ax, bx) = _split_offset(oy), _split_offset(ox)
                        source = colour * 9 + (ay + 1) * 3 + (ax + 1)
                        second.weight[carrier, source, by + 1, bx + 1] += weight
                second.weight[carrier, colour * 9 + 4, 1, 1] -= 1.0  # minus the nearest skip
    for conv in convs[2:-1]:
        conv.weight[:carriers] = 0.0
        for carrier in range(carriers):
            conv.weight[carrier, carrier, 1, 1] = 1.0
    for prelu in prelus[1:]:
        prelu.weight[:carriers] = 1.0
    last.weight.zero_()
    for carrier in range(carriers):
        last.weight[carrier, carrier, 1, 1] = 1.0


@torch.no_grad()
def blend_with_bicubic(model: CompactSR, alpha: float) -> CompactSR:
    """One compact net computing `alpha * model(x) + (1 - alpha) * bicubic(x)` exactly.

    The two nets run side by side in one wider body (block-diagonal convs, concatenated PReLUs; the
    bicubic half is `init_as_bicubic` with 48 features) and the last conv mixes them, so the result
    is still the plain compact layout that spandrel and ComfyUI load. Why: measured on held-out
    text, half the trained correction reads better than all of it (the net's letter fixes stay, its
    occasional letter distortions are halved).
    """
    if not 0.0 < alpha <= 1.0:
        raise InvalidInputError(f"blend alpha must be in (0, 1], got {alpha}")
    if alpha == 1.0:
        return model
    s, c = model.scale, model.channels
    bicubic = CompactSR(num_feat=c * s * s, num_conv=model.num_conv, scale=s, channels=c)
    init_as_bicubic(bicubic, torch.Generator().manual_seed(0))
    nf_a, nf_b = model.num_feat, bicubic.num_feat
    out = CompactSR(num_feat=nf_a + nf_b, num_conv=model.num_conv, scale=s, channels=c)
    layers = zip(model.body, bicubic.body, out.body)
    last = len(out.body) - 1
    for index, (a, b, o) in enumerate(layers):
        if isinstance(o, nn.PReLU):
            o.weight.copy_(torch.cat([a.weight, b.weight]))
        elif index == 0:
            o.weight.copy_(torch.cat([a.weight, b.weight]))
            o.bias.copy_(torch.cat([a.bias, b.bias]))
        elif index == last:
            o.weight.copy_(torch.cat([alpha * a.weight, (1.0 - alpha) * b.weight], dim=1))
            o.bias.copy_(alpha * a.bias + (1.0 - alpha) * b.bias)
        else:
            o.weight.zero_()
            o.weight[:nf_a, :nf_a] = a.weight
            o.weight[nf_a:, nf_a:] = b.weight
            o.bias.copy_(torch.cat([a.bias, b.bias]))
    return out.eval()
