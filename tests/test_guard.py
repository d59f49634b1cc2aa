"""Text Guard core: repairs wrong words, never reads worse, leaves everything else bit-identical."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from glyphsr_core.text.fidelity import compare_words
from glyphsr_core.guard import (GuardReport, format_guard_report, guard_image, mask_crop, ocr_reader,
                                resample_round, word_mask)
from glyphsr_core.guard.repairs import LADDER
from glyphsr_core.guard.report import COMPOSITED, RESAMPLED, UNPLACED
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box
from textimages import render_words

SIZE = (480, 240)
LAYOUTS = [
    [["OPEN", "DAILY"], ["FRESH", "BREAD"]],
    [["EXIT", "ONLY"], ["NO", "PARKING"]],
    [["HOTEL", "CENTRAL"], ["ROOMS", "FREE"]],
]


def tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def render(lines, **kwargs) -> torch.Tensor:
    return tensor(render_words(lines, size=SIZE, font_size=34, **kwargs)[0])


def degraded(image: torch.Tensor, factor: int = 3) -> torch.Tensor:
    """A softer copy: down by `factor`, back up bicubic, blurred (a weak restorer's result)."""
    pil = Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
    small = pil.resize((pil.width // factor, pil.height // factor), Image.Resampling.BICUBIC)
    return tensor(small.resize(pil.size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(0.6)))


def garbage(image: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """What a random-weight diffusion model returns: no text at all, just texture."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(image.shape, generator=generator) * 0.6 + 0.2).to(image.dtype)


@pytest.fixture(scope="module")
def reader():
    return ocr_reader(min_confidence=0.5)


def f1(reader, image: torch.Tensor, guidance: OcrResult) -> float:
    return compare_words(guidance, reader(image)).counts.f1


def assert_untouched_outside(result, image: torch.Tensor) -> None:
    outside = result.mask == 0
    assert torch.equal(result.image[:, outside], image[:, outside])


# ------------------------------------------------------------------------------------------------ masks
def test_word_mask_is_full_on_the_box_and_fades_to_zero_within_dilation():
    mask = word_mask([(0.25, 0.25, 0.5, 0.5)], 40, 40, dilation=8)  # box = pixels 10..19
    assert mask[10:20, 10:20].min() == 1.0 and mask[6:24, 6:24].min() == 1.0  # grown by dilation / 2
    assert mask[15, 2] > 0 and mask[15, 1] == 0.0 and mask[15, 28:].max() == 0.0  # nothing beyond box + dilation
    row = mask[15, 20:28].tolist()
    assert row[:4] == [1.0] * 4 and all(a > b for a, b in zip(row[3:], row[4:]))  # a monotone soft edge
    wide = word_mask([(0.25, 0.25, 0.5, 0.5)], 40, 40, dilation=2, context=0.5)  # + half the 10 px height
    assert wide[15, 3] > 0 and wide[15, 2] == 0.0 and wide[8:22, 8:22].min() == 1.0
    hard = word_mask([(0.25, 0.25, 0.5, 0.5)], 40, 40, dilation=0)
    assert hard.sum() == 100 and set(hard.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="dilation"):
        word_mask([], 4, 4, dilation=-1)


def test_mask_crop_adds_context_and_aligns_inside_the_image():
    mask = torch.zeros(100, 90)
    mask[40:50, 30:37] = 1
    x0, y0, x1, y1 = mask_crop(mask, margin=4, align=8)
    assert (x1 - x0) % 8 == 0 and (y1 - y0) % 8 == 0
    assert x0 <= 26 and x1 >= 41 and y0 <= 36 and y1 >= 54 and x1 <= 90 and y1 <= 100
    assert mask_crop(torch.zeros(5, 5), 2) is None
    mask[:, :] = 1
    assert mask_crop(mask, 4, align=8) == (0, 0, 90, 100)  # cannot align inside: the whole image


# ------------------------------------------------------------------------------------------------ guard
def test_a_perfect_output_changes_no_pixel(reader):
    clean = render(LAYOUTS[0])
    guidance = reader(clean)
    calls = []
    result = guard_image(clean, degraded(clean), guidance, reader=reader,
                         resampler=lambda *a: calls.append(a) or a[0])
    assert torch.equal(result.image, clean) and result.mask.max() == 0
    assert calls == [] and result.report.ocr_passes == 1 and result.report.changed_pixels == 0
    assert result.report.f1_before == result.report.f1_after == 1.0


def test_garbage_output_gets_the_fallback_words_back(reader):
    clean = render(LAYOUTS[0])
    guidance = reader(clean)
    fallback = degraded(clean)
    output = garbage(clean)
    result = guard_image(output, fallback, guidance, reader=reader)
    assert f1(reader, output, guidance) == 0.0
    assert result.report.f1_after >= f1(reader, fallback, guidance) - 0.01
    assert result.report.f1_after == pytest.approx(f1(reader, result.image, guidance))
    assert {w.action for w in result.report.words} == {COMPOSITED}
    assert_untouched_outside(result, output)
    assert 0 < result.report.changed_pixels < 0.5 * SIZE[0] * SIZE[1]  # only the word boxes


def _cases():
    """(name, output, fallback, guidance) over the layouts: garbage, one word changed, degraded fallbacks."""
    for index, lines in enumerate(LAYOUTS):
        clean = render(lines)
        wrong = [[w[:-1] + ("X" if w[-1] != "X" else "Y") if (i == 0 and j == 1) else w for j, w in enumerate(line)]
                 for i, line in enumerate(lines)]
        yield f"{index}-garbage", garbage(clean, index), degraded(clean), clean
        yield f"{index}-one-word-changed", render(wrong), degraded(clean, 4), clean
        half = clean.clone()
        half[:, SIZE[1] // 2:] = garbage(clean, 10 + index)[:, SIZE[1] // 2:]  # second line lost
        yield f"{index}-second-line-lost", half, degraded(clean), clean


@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: c[0])
def test_guarded_result_never_reads_worse_than_output_or_fallback(reader, case):
    """The issue's guarantee: final F1 >= max(F1 output, F1 fallback) - 0.01 against the guidance."""
    _, output, fallback, clean = case
    guidance = reader(clean)
    assert len(guidance.regions) >= 3
    result = guard_image(output, fallback, guidance, reader=reader)
    final = f1(reader, result.image, guidance)
    assert final >= max(f1(reader, output, guidance), f1(reader, fallback, guidance)) - 0.01
    assert_untouched_outside(result, output)


def test_resampler_rounds_get_new_seeds_stronger_text_weight_and_aligned_crops(reader):
    clean = render(LAYOUTS[1])
    guidance = reader(clean)
    output = garbage(clean)
    seen = []

    def resampler(crop, mask, round_):
        seen.append((tuple(crop.shape), tuple(mask.shape), round_))
        return crop  # no better: the round is rejected or changes nothing

    result = guard_image(output, degraded(clean), guidance, reader=reader, resampler=resampler, rounds=3)
    assert [r.index for *_, r in seen] == [0, 1, 2]
    assert [r.seed_offset for *_, r in seen] == [1, 2, 3]
    assert [r.text_weight for *_, r in seen] == [1.25, 1.5, 1.75]
    for crop_shape, mask_shape, _ in seen:
        assert crop_shape[:2] == (1, 3) and crop_shape[2] % 8 == 0 and crop_shape[3] % 8 == 0
        assert mask_shape == (1, 1, *crop_shape[2:])
    assert result.report.rounds_run == 3 and result.report.ocr_passes == 1 + 3 + 1
    assert all(w.action == COMPOSITED and w.rounds == 3 for w in result.report.words)


def test_a_resampler_that_fixes_the_words_is_kept_and_nothing_is_composited(reader):
    clean = render(LAYOUTS[2])
    guidance = reader(clean)
    output = clean.clone()
    output[:, : SIZE[1] // 2] = garbage(clean)[:, : SIZE[1] // 2]  # first line garbled
    calls = []

    def resampler(crop, mask, round_):
        calls.append(round_.index)
        if round_.index == 0:
            return garbage(crop[0], 5)[None]  # first round: still garbage
        x0, y0, x1, y1 = round_.window  # second round: the right letters (the stronger text weight worked)
        assert torch.equal(crop[0], output[:, y0:y1, x0:x1])
        return clean[:, y0:y1, x0:x1][None]

    result = guard_image(output, degraded(clean), guidance, reader=reader, resampler=resampler, rounds=3)
    repaired = [w for w in result.report.words if w.needs_repair]
    assert repaired and all(w.action == RESAMPLED and w.rounds == 2 for w in repaired)
    assert calls == [0, 1] and result.report.f1_after == 1.0
    assert_untouched_outside(result, output)
    text = format_guard_report([result.report])
    assert "resampled after 2 round(s), now right" in text
    assert text.startswith(f"word F1 {result.report.f1_before:.3f} -> 1.000") and result.report.f1_before < 1


def test_wrong_resampler_answer_is_a_clear_error(reader):
    clean = render(LAYOUTS[0])
    with pytest.raises(ValueError, match="re-sampler must return a crop of shape"):
        guard_image(garbage(clean), clean, reader(clean), reader=reader,
                    resampler=lambda crop, mask, r: crop[..., :-1])


def test_typed_words_without_a_place_are_reported_not_repaired():
    typed = OcrResult(0, 0, (TextRegion("OPEN"), TextRegion("SALE")))
    seen = OcrResult(100, 50, (TextRegion("OPEN", 0.9, quad_from_box((0.1, 0.1, 0.4, 0.4))),))
    image = torch.rand(3, 50, 100)
    result = guard_image(image, torch.zeros(3, 25, 50), typed, reader=lambda im: seen)
    assert [(w.expected, w.action) for w in result.report.words] == [("open", "left"), ("sale", UNPLACED)]
    assert torch.equal(result.image, image) and "no place" in format_guard_report([result.report])


def test_an_invented_word_is_painted_over_with_the_fallback(reader):
    clean = render(LAYOUTS[0])
    guidance = reader(clean)
    extra = render(LAYOUTS[0] + [["SALE"]])  # a third line the guidance does not have
    result = guard_image(extra, clean, guidance, reader=reader)
    (invented,) = [w for w in result.report.words if w.needs_repair]
    assert invented.status == "invented" and invented.found == "sale" and invented.action == COMPOSITED
    assert invented.final_status is None and result.report.f1_after == 1.0
    assert invented.repair in {rung.name for rung in LADDER}
    assert f'"sale": invented -> composited ({invented.repair}), gone' in format_guard_report([result.report])
    assert_untouched_outside(result, extra)


def test_bad_settings_name_the_input():
    image, words = torch.rand(3, 8, 8), OcrResult(8, 8, ())
    for kwargs, message in (({"rounds": -1}, "rounds"), ({"color_method": "hsv"}, "color_method"),
                            ({"align": 0}, "align")):
        with pytest.raises(ValueError, match=message):
            guard_image(image, image, words, reader=lambda im: words, **kwargs)
    with pytest.raises(ValueError, match="'fallback'"):
        guard_image(image, torch.rand(8, 8), words, reader=lambda im: words)


def test_round_settings_and_empty_report():
    assert resample_round(0).text_weight == 1.25 and resample_round(3).seed_offset == 4
    assert GuardReport().to_dict()["words"] == []
