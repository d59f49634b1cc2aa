"""Word P/R/F1 (standard and glyphsr-paper rules), CER and PSNR/SSIM on hand-made cases."""

import math

import numpy as np
import pytest

from glyphsr_core.text.metrics import (WordCounts, cer, edit_distance, micro_prf, normalise_words, paper_counts, psnr, ssim,
                                  word_aligned_errors, word_counts, word_prf)


def test_perfect_match():
    assert word_prf(["OPEN", "DAILY"], ["OPEN", "DAILY"]) == (1.0, 1.0, 1.0, 2, 2, 2)


def test_empty_cases():
    assert word_prf([], []) == (1.0, 1.0, 1.0, 0, 0, 0)
    assert word_prf([], ["SALE"]) == (0.0, 0.0, 0.0, 0, 0, 1)
    assert word_prf(["SALE"], []) == (0.0, 0.0, 0.0, 0, 1, 0)


def test_duplicates_are_matched_as_a_multiset():
    # "sale" predicted three times, present twice: 2 hits out of 4 predictions and 3 truths
    p, r, f1, tp, n_pred, n_gt = word_prf(["sale", "sale", "sale", "today"], ["sale", "sale", "open"])
    assert (tp, n_pred, n_gt) == (2, 4, 3)
    assert p == pytest.approx(0.5) and r == pytest.approx(2 / 3) and f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_case_and_punctuation_are_ignored():
    assert word_prf(["Open,", "DAILY!", "$4.99"], ["open", "daily", "4.99"])[:3] == (1.0, 1.0, 1.0)
    assert normalise_words("Hello, World! $4.99") == ["hello", "world", "499"]
    # a prediction that is a whole line is split into words
    assert word_prf(["FRESH BREAD"], ["fresh", "bread"])[3] == 2
    # words that are only punctuation disappear
    assert normalise_words(["--", "&", "ok"]) == ["ok"]


def test_micro_average_sums_counts_over_images():
    total = micro_prf([(["a", "b"], ["a", "b"]), ([], ["c", "d"]), (["x"], [])])
    assert (total.tp, total.n_pred, total.n_gt) == (2, 3, 4)
    assert total.precision == pytest.approx(2 / 3) and total.recall == pytest.approx(0.5)
    assert total.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # a per-image mean would differ: the micro average weights images by their word counts
    assert total.f1 != pytest.approx((1.0 + 0.0 + 0.0) / 3)


def test_paper_rule_counts_near_misses_as_false_positives_and_ignores_extra_predictions():
    # OPEN exact; "c0ffee" ~ "coffee" (ratio 0.83) -> FP; "bread" has nothing similar left -> FN
    assert paper_counts(["OPEN", "c0ffee", "zzz", "extra", "words"], ["open", "coffee", "bread"]) == (1, 1, 1)
    counts = word_counts(["OPEN", "c0ffee", "zzz", "extra", "words"], ["open", "coffee", "bread"])
    assert counts.paper_precision == pytest.approx(0.5) and counts.paper_recall == pytest.approx(0.5)
    # extra predictions hurt the standard precision but not the paper rule
    assert counts.precision == pytest.approx(1 / 5)
    # each prediction is used once: two GT words cannot share one near miss
    assert paper_counts(["salt"], ["sale", "sale"]) == (0, 1, 1)
    assert paper_counts([], []) == (0, 0, 0) and WordCounts().paper_f1 == 0.0


def test_edit_distance_and_cer():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
    assert cer("helo", "hello") == pytest.approx(0.2)
    assert cer("", "") == 0.0 and cer("x", "") == 1.0


def test_word_aligned_cer_ignores_reading_order_and_caps_wrong_words():
    assert word_aligned_errors(["world", "hello"], ["hello", "world"]) == (0, 10)
    assert word_aligned_errors(["hel1o"], ["hello", "world"]) == (1 + 5, 10)
    # a completely wrong long prediction costs no more than the missing word
    assert word_aligned_errors(["xxxxxxxxxxxxxxxx"], ["ab"]) == (2, 2)


def test_psnr_and_ssim_whole_image_and_inside_a_mask():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    assert math.isinf(psnr(a, a)) and ssim(a, a) == pytest.approx(1.0)
    b = a.copy()
    b[:, 32:] = 255 - b[:, 32:]  # change only the right half
    mask = np.zeros((48, 64), dtype=bool)
    mask[:, :32] = True
    assert math.isinf(psnr(a, b, mask))
    assert psnr(a, b) < 10
    assert ssim(a, b, mask) > ssim(a, b)
    # a known value: uniform error of 0.1 -> MSE 0.01 -> 20 dB
    assert psnr(np.full((4, 4), 0.5), np.full((4, 4), 0.6)) == pytest.approx(20.0)
    assert math.isnan(psnr(a, b, np.zeros((48, 64), dtype=bool)))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="mask"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)), np.ones((4, 4)))
