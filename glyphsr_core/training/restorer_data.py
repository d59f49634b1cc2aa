"""Training samples for the restorer: LR/HQ patches for pixel losses and whole words for the recogniser.

Every corpus image is held in memory (a 512 px sample is ~1 MB), so a step costs no disk reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import InvalidInputError
from .restorer_config import CorpusSpec
from ..data.corpus import load_corpus

NET_SCALE = 4
WORD_CONTEXT = 4     # LR pixels around a word crop, so the net sees the word's surroundings
MIN_WORD_HEIGHT = 12  # HQ pixels; smaller words teach the recogniser loss nothing


@dataclass
class TrainImage:
    hq: np.ndarray                      # H x W x 3 uint8
    inputs: dict[int, np.ndarray]       # scale -> net input (H/4 x W/4 x 3 uint8): x4 LQ, or x8 LQ enlarged 2x
    mask: np.ndarray                    # H x W float32 in {0, 1}: word quads
    words: list[tuple[list[int], tuple[int, int, int, int]]]  # (CTC ids, HQ box x0, y0, x1, y1)
    weight: float
    targets: dict[int, np.ndarray] | None = None  # scale -> a teacher's H x W x 3 uint8 output, used in place of `hq`

    def target(self, scale: int) -> np.ndarray:
        return self.hq if self.targets is None else self.targets[scale]


def load_train_images(specs: Sequence[CorpusSpec], encode: Callable[[str], list[int] | None],
                      scales: Sequence[int] = (4, 8)) -> list[TrainImage]:
    """Read every sample of the corpora; words the recogniser's alphabet cannot spell are left out."""
    images = []
    for spec in specs:
        samples = load_corpus(spec.out)[: spec.n]  # a larger folder made for another run: its first n
        for sample in samples:
            hq = np.asarray(Image.open(sample.hq_path).convert("RGB"))
            height, width = hq.shape[:2]
            inputs = {}
            for scale in scales:
                lq = Image.open(sample.lq_paths[scale]).convert("RGB")
                if scale != NET_SCALE:
                    lq = lq.resize((width // NET_SCALE, height // NET_SCALE), Image.Resampling.BICUBIC)
                inputs[scale] = np.asarray(lq)
            mask = (np.asarray(Image.open(sample.mask_path).convert("L")) > 127).astype(np.float32)
            words = []
            for word in sample.words:
                ids = encode(word.text)
                xs, ys = [p[0] for p in word.quad], [p[1] for p in word.quad]
                box = (max(0, math.floor(min(xs))), max(0, math.floor(min(ys))),
                       min(width, math.ceil(max(xs))), min(height, math.ceil(max(ys))))
                if ids and box[3] - box[1] >= MIN_WORD_HEIGHT and box[2] - box[0] >= 4:
                    words.append((ids, box))
            images.append(TrainImage(hq, inputs, mask, words, spec.weight / len(samples)))
    return images


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div_(255.0)


@dataclass
class WordCrop:
    lr: torch.Tensor                 # 3 x h x w input around the word
    hq: torch.Tensor                 # 3 x H x W ground truth of the same area
    box: tuple[int, int, int, int]   # the word inside the SR output of `lr`
    ids: list[int]

    def to(self, device: torch.device) -> "WordCrop":
        return WordCrop(self.lr.to(device), self.hq.to(device), self.box, self.ids)


class Sampler:
    """Draws the pixel patches and word crops of one step from a seeded numpy generator."""

    def __init__(self, images: list[TrainImage], x8_fraction: float) -> None:
        if not images:
            raise InvalidInputError("the training corpora hold no images")
        self.images = images
        self.x8_fraction = x8_fraction
        weights = np.array([im.weight for im in images], dtype=np.float64)
        self.probabilities = weights / weights.sum()
        self.with_words = [i for i, im in enumerate(images) if im.words]

    def _input_scale(self, rng: np.random.Generator) -> int:
        return 8 if rng.random() < self.x8_fraction else 4

    def patches(self, rng: np.random.Generator, count: int, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(LR, HQ, mask) batches; three in four patches are centred near a word.

        HQ is the image's target for the input's scale: the ground truth, or a teacher's output.
        """
        lrs, hqs, masks = [], [], []
        for _ in range(count):
            image = self.images[rng.choice(len(self.images), p=self.probabilities)]
            scale = self._input_scale(rng)
            lq = image.inputs[scale]
            lh, lw = lq.shape[:2]
            if image.words and rng.random() < 0.75:
                _, (x0, y0, x1, y1) = image.words[rng.integers(len(image.words))]
                cx = (x0 + x1) / 2 / NET_SCALE + rng.normal(0, size / 4)
                cy = (y0 + y1) / 2 / NET_SCALE + rng.normal(0, size / 4)
                top, left = int(np.clip(cy - size / 2, 0, lh - size)), int(np.clip(cx - size / 2, 0, lw - size))
            else:
                top, left = int(rng.integers(0, lh - size + 1)), int(rng.integers(0, lw - size + 1))
            s = NET_SCALE
            lrs.append(_tensor(lq[top:top + size, left:left + size]))
            hqs.append(_tensor(image.target(scale)[top * s:(top + size) * s, left * s:(left + size) * s]))
            masks.append(torch.from_numpy(image.mask[top * s:(top + size) * s, left * s:(left + size) * s].copy()))
        return torch.stack(lrs), torch.stack(hqs), torch.stack(masks)[:, None]

    def words(self, rng: np.random.Generator, count: int) -> list[WordCrop]:
        crops = []
        if not self.with_words:
            return crops
        for _ in range(count):
            image = self.images[self.with_words[rng.integers(len(self.with_words))]]
            ids, (x0, y0, x1, y1) = image.words[rng.integers(len(image.words))]
            scale = self._input_scale(rng)
            lq = image.inputs[scale]
            lh, lw = lq.shape[:2]
            s = NET_SCALE
            lx0, ly0 = max(0, x0 // s - WORD_CONTEXT), max(0, y0 // s - WORD_CONTEXT)
            lx1, ly1 = min(lw, -(-x1 // s) + WORD_CONTEXT), min(lh, -(-y1 // s) + WORD_CONTEXT)
            crops.append(WordCrop(
                lr=_tensor(lq[ly0:ly1, lx0:lx1]),
                hq=_tensor(image.target(scale)[ly0 * s:ly1 * s, lx0 * s:lx1 * s]),
                box=(x0 - lx0 * s, y0 - ly0 * s, x1 - lx0 * s, y1 - ly0 * s),
                ids=ids,
            ))
        return crops
