"""Corpus samples -> training tensors, and a sampler that makes every step's batch reproducible.

Training goes LQ -> HQ: the control image is the LQ image upscaled (bicubic) back to the HQ size,
the target is the HQ image (encoded to latents by the trainer). The text prompt is built from the
ground-truth words with `glyphsr_core.text.prompts`, exactly as inference builds it from OCR words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..errors import InvalidInputError
from ..text.prompts import build_prompts


@dataclass(frozen=True)
class ItemKey:
    """Which sample, and the seed of its random choices (scale, prompt dropout)."""

    index: int
    seed: int


def _to_tensor(image: Any, channels: int) -> torch.Tensor:
    array = np.asarray(image.convert("RGB" if channels == 3 else "L"), dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


class CorpusDataset(torch.utils.data.Dataset):
    """Items: hq [3,R,R] in -1..1, control [3,R,R] 0..1, glyph [1,R,R], mask [1,R,R], prompt, words."""

    def __init__(self, samples: Sequence[Any], scales: Sequence[int], resolution: int, prompt_dropout: float = 0.0,
                 max_words: int = 24) -> None:
        if not samples:
            raise InvalidInputError("the training corpus split is empty: make a bigger corpus or hold out fewer samples")
        for sample in samples:
            missing = [s for s in scales if int(s) not in sample.lq_paths]
            if missing:
                raise InvalidInputError(f"corpus sample {sample.id} has no LQ image for scale(s) {missing}; "
                                 f"it has {sorted(sample.lq_paths)} (set data.scales accordingly)")
        self.samples = list(samples)
        self.scales = [int(s) for s in scales]
        self.resolution = int(resolution)
        self.prompt_dropout = float(prompt_dropout)
        self.max_words = max_words

    def __len__(self) -> int:
        return len(self.samples)

    def prompt_for(self, sample: Any) -> str:
        return build_prompts("", sample.ocr_result(), max_words=self.max_words).text_positive

    def load(self, sample: Any, scale: int) -> dict[str, Any]:
        from PIL import Image

        size = (self.resolution, self.resolution)
        hq = Image.open(sample.hq_path).convert("RGB")
        lq = Image.open(sample.lq_paths[scale]).convert("RGB")
        glyph = Image.open(sample.glyph_path)
        mask = Image.open(sample.mask_path)
        return {
            "hq": _to_tensor(hq.resize(size, Image.Resampling.BICUBIC), 3) * 2.0 - 1.0,
            "control": _to_tensor(lq.resize(size, Image.Resampling.BICUBIC), 3),
            "glyph": _to_tensor(glyph.resize(size, Image.Resampling.BILINEAR), 1),
            "mask": _to_tensor(mask.resize(size, Image.Resampling.BILINEAR), 1),
        }

    def __getitem__(self, key: ItemKey) -> dict[str, Any]:
        rng = np.random.default_rng(key.seed)
        sample = self.samples[key.index]
        scale = self.scales[int(rng.integers(len(self.scales)))]
        item = self.load(sample, scale)
        item["prompt"] = "" if rng.random() < self.prompt_dropout else self.prompt_for(sample)
        item["id"] = sample.id
        item["scale"] = scale
        return item


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out


class StepBatchSampler(torch.utils.data.Sampler):
    """Batches for micro-steps `start`, `start + 1`, ...: each a pure function of (seed, micro-step, rank).

    The sample stream is the concatenation of seeded per-epoch permutations; process `rank` of
    `world` takes every `world`-th batch. Resuming at micro-step k therefore yields exactly the
    batches an uninterrupted run would have seen, with no data-loader state to save.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, start: int = 0, rank: int = 0,
                 world: int = 1, stop: int | None = None) -> None:
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.start, self.rank, self.world, self.stop = start, rank, world, stop

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def batch(self, micro_step: int) -> list[ItemKey]:
        first = (micro_step * self.world + self.rank) * self.batch_size
        keys = []
        for position in range(first, first + self.batch_size):
            epoch, offset = divmod(position, self.num_samples)
            index = int(self._permutation(epoch)[offset])
            keys.append(ItemKey(index, int(np.random.SeedSequence([self.seed, position]).generate_state(1)[0])))
        return keys

    def __iter__(self) -> Iterator[list[ItemKey]]:
        step = self.start
        while self.stop is None or step < self.stop:
            yield self.batch(step)
            step += 1

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("an endless StepBatchSampler has no length")
        return max(0, self.stop - self.start)


def split_corpus(samples: Sequence[Any], validation_samples: int) -> tuple[list[Any], list[Any]]:
    """(train, held out): the last `validation_samples` samples by id are never trained on."""
    ordered = sorted(samples, key=lambda s: s.id)
    if validation_samples >= len(ordered):
        raise InvalidInputError(f"data.validation_samples ({validation_samples}) must be smaller than the corpus "
                         f"({len(ordered)} samples)")
    cut = len(ordered) - validation_samples
    return ordered[:cut], ordered[cut:]
