"""How well text survives super-resolution: word precision/recall/F1, character error rate, PSNR/SSIM.

Word matching (rule `standard`): words are lower-cased, punctuation is removed (anything that is
not a letter, digit, underscore or space), text is split on white space, and predicted and
ground-truth words are matched as multisets (a word found twice counts twice only if it is there
twice). Precision = TP / predicted words, recall = TP / ground-truth words; when both lists are
empty all three are 1, otherwise a ratio with nothing to divide by is 0. Sum the counts over a
dataset for micro averages (`WordCounts`).

Rule `glyphsr-paper` (the GLYPH-SR authors' evaluation, restated): exact one-to-one matches are
true positives; every unmatched ground-truth word whose most similar remaining prediction
(difflib ratio) reaches 0.5 counts as a false positive (and uses up that prediction), otherwise
a false negative; extra predictions are never penalised. P = TP/(TP+FP), R = TP/(TP+FN).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Iterable, Sequence

import numpy as np

RULES = ("standard", "glyphsr-paper")
PAPER_SIMILARITY = 0.5
_PUNCTUATION = re.compile(r"[^\w\s]")


def normalise_words(words: Iterable[str] | str) -> list[str]:
    """Lower-cased words with punctuation removed; a string or a list of strings (each may hold spaces)."""
    text = words if isinstance(words, str) else " ".join(words)
    return _PUNCTUATION.sub("", text).lower().split()


def _ratio(numerator: float, denominator: float, both_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return numerator / denominator


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@dataclass
class WordCounts:
    """Counts that add up over images: micro-averaged precision/recall/F1 for both rules."""

    tp: int = 0
    n_pred: int = 0
    n_gt: int = 0
    paper_tp: int = 0
    paper_fp: int = 0
    paper_fn: int = 0

    def __add__(self, other: "WordCounts") -> "WordCounts":
        return WordCounts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple())))

    def as_tuple(self) -> tuple[int, ...]:
        return (self.tp, self.n_pred, self.n_gt, self.paper_tp, self.paper_fp, self.paper_fn)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.n_pred, self.n_pred == 0 and self.n_gt == 0)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.n_gt, self.n_pred == 0 and self.n_gt == 0)

    @property
    def f1(self) -> float:
        if self.n_pred == 0 and self.n_gt == 0:
            return 1.0
        return _f1(self.precision, self.recall)

    @property
    def paper_precision(self) -> float:
        return _ratio(self.paper_tp, self.paper_tp + self.paper_fp, False)

    @property
    def paper_recall(self) -> float:
        return _ratio(self.paper_tp, self.paper_tp + self.paper_fn, False)

    @property
    def paper_f1(self) -> float:
        return _f1(self.paper_precision, self.paper_recall)


def word_prf(pred_words: Iterable[str] | str, gt_words: Iterable[str] | str) -> tuple[float, float, float, int, int, int]:
    """(precision, recall, f1, tp, n_pred, n_gt) of one image under the `standard` rule."""
    counts = word_counts(pred_words, gt_words)
    return counts.precision, counts.recall, counts.f1, counts.tp, counts.n_pred, counts.n_gt


def paper_counts(pred_words: Iterable[str] | str, gt_words: Iterable[str] | str) -> tuple[int, int, int]:
    """(tp, fp, fn) of one image under the `glyphsr-paper` rule."""
    pred, gt = normalise_words(pred_words), normalise_words(gt_words)
    used_pred: set[int] = set()
    unmatched_gt: list[str] = []
    for word in gt:
        match = next((j for j, p in enumerate(pred) if j not in used_pred and p == word), None)
        if match is None:
            unmatched_gt.append(word)
        else:
            used_pred.add(match)
    tp, fp, fn = len(gt) - len(unmatched_gt), 0, 0
    for word in unmatched_gt:
        best, best_index = 0.0, -1
        for j, p in enumerate(pred):
            if j in used_pred:
                continue
            similarity = SequenceMatcher(None, word, p).ratio()
            if similarity > best:
                best, best_index = similarity, j
        if best_index >= 0 and best >= PAPER_SIMILARITY:
            fp += 1
            used_pred.add(best_index)
        else:
            fn += 1
    return tp, fp, fn


def word_counts(pred_words: Iterable[str] | str, gt_words: Iterable[str] | str) -> WordCounts:
    """Both rules' counts for one image."""
    pred, gt = normalise_words(pred_words), normalise_words(gt_words)
    tp = sum((Counter(pred) & Counter(gt)).values())
    paper_tp, paper_fp, paper_fn = paper_counts(pred, gt)
    return WordCounts(tp, len(pred), len(gt), paper_tp, paper_fp, paper_fn)


def micro_prf(pairs: Iterable[tuple[Iterable[str] | str, Iterable[str] | str]]) -> WordCounts:
    """Summed counts over (predicted words, ground-truth words) pairs: read .precision/.recall/.f1."""
    total = WordCounts()
    for pred, gt in pairs:
        total = total + word_counts(pred, gt)
    return total


# ---------------------------------------------------------------------------------------------
# characters


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(pred: str, gt: str) -> float:
    """Character error rate: edit distance / ground-truth length (0 when both are empty)."""
    if not gt:
        return 0.0 if not pred else 1.0
    return edit_distance(pred, gt) / len(gt)


def word_aligned_errors(pred_words: Iterable[str] | str, gt_words: Iterable[str] | str) -> tuple[int, int]:
    """(character edits, ground-truth characters) after pairing each GT word with its closest prediction.

    Reading order differs between OCR output and annotations, so a whole-string CER would count
    order, not legibility. Here GT and predicted words are paired greedily by smallest edit
    distance (each prediction used once); a GT word left without a prediction costs its length.
    Sum both numbers over a dataset and divide for the dataset's CER.
    """
    pred, gt = normalise_words(pred_words), normalise_words(gt_words)
    total_chars = sum(len(w) for w in gt)
    candidates = sorted((edit_distance(g, p), i, j) for i, g in enumerate(gt) for j, p in enumerate(pred))
    used_gt: set[int] = set()
    used_pred: set[int] = set()
    edits = 0
    for distance, i, j in candidates:
        if i in used_gt or j in used_pred:
            continue
        used_gt.add(i)
        used_pred.add(j)
        edits += min(distance, len(gt[i]))  # a wrong word never costs more than missing it
    edits += sum(len(g) for i, g in enumerate(gt) if i not in used_gt)
    return edits, total_chars


# ---------------------------------------------------------------------------------------------
# pixels


def _as_float(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    return array.astype(np.float64)


def _check_pair(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if mask is not None and mask.shape != a.shape[:2]:
        raise ValueError(f"mask must be {a.shape[:2]} (the image's height x width), got {mask.shape}")


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of two HxW or HxWxC images (uint8, or float in 0..1), optionally inside a mask.

    Infinite when identical; NaN when the mask selects no pixel.
    """
    x, y = _as_float(a), _as_float(b)
    selection = None if mask is None else np.asarray(mask) > 0
    _check_pair(x, y, selection)
    diff = (x - y) ** 2
    if selection is not None:
        if not selection.any():
            return float("nan")
        diff = diff[selection]
    mse = float(diff.mean())
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def _gaussian_blur(image: np.ndarray, sigma: float = 1.5, radius: int = 5) -> np.ndarray:
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(image, radius, mode="reflect")
    rows = sum(t * padded[k:k + image.shape[0], :] for k, t in enumerate(taps))
    return sum(t * rows[:, k:k + image.shape[1]] for k, t in enumerate(taps))


def _luma(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return image[:, :, :3] @ np.array([0.299, 0.587, 0.114])


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """SSIM on luminance (Gaussian window, sigma 1.5), averaged over the image or inside a mask."""
    x, y = _as_float(a), _as_float(b)
    selection = None if mask is None else np.asarray(mask) > 0
    _check_pair(x, y, selection)
    x, y = _luma(x), _luma(y)
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = _gaussian_blur(x), _gaussian_blur(y)
    var_x = _gaussian_blur(x * x) - mu_x**2
    var_y = _gaussian_blur(y * y) - mu_y**2
    cov = _gaussian_blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    if selection is not None:
        if not selection.any():
            return float("nan")
        return float(ssim_map[selection].mean())
    return float(ssim_map.mean())


def mean_finite(values: Sequence[float]) -> float:
    """Mean over finite values (identical images give inf PSNR; empty masks give NaN); NaN if none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(sum(finite) / len(finite)) if finite else float("nan")
