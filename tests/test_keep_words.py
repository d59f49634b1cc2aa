"""Keep Words core: an upscaler's look with the reference's words, least visible repair first."""

from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageFilter

from glyphsr_core.sampling.colorfix import match_reference
from glyphsr_core.errors import InvalidInputError
from glyphsr_core.text.fidelity import compare_words
from glyphsr_core.guard import ALL_TEXT, CHANGED_WORDS, format_guard_report, keep_words, keep_words_batch, ocr_reader
from glyphsr_core.guard.masks import pixel_box
from glyphsr_core.guard.repairs import DETAIL, LADDER, REFERENCE, SHARPENED, band_energy, blur, repair_patch
from glyphsr_core.types import OcrResult
from test_guard import LAYOUTS, degraded, render, tensor

WRONG = [["OPEN", "DAIIY"], ["FRESH", "BREAD"]]  # what a sharpening upscaler made of LAYOUTS[0]


def upscaler_look(image: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A sharpening upscaler's look: strong unsharp mask (halos, crisp edges) and fine grain."""
    pil = Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
    sharp = tensor(pil.filter(ImageFilter.UnsharpMask(2, 200, 0)))
    grain = 0.04 * torch.randn(image.shape, generator=torch.Generator().manual_seed(seed))
    return (sharp + grain).clamp(0, 1)


def edge_energy(image: torch.Tensor, mask: torch.Tensor, levels: int = 2) -> float:
    """Mean energy under `mask` of the bands that hold letter edges at x4 (1-4 px)."""
    band = image[None] - blur(image[None], levels)
    return float((band[0] ** 2 * mask).sum() / mask.sum())


@pytest.fixture(scope="module")
def reader():
    return ocr_reader(min_confidence=0.5)


@pytest.fixture(scope="module")
def scene(reader):
    clean = render(LAYOUTS[0])
    guidance = reader(clean)
    assert sorted(r.text.lower() for r in guidance.regions) != []
    return {"guidance": guidance, "up": upscaler_look(render(WRONG)), "reference": degraded(clean, 3)}


@pytest.fixture(scope="module")
def changed(scene, reader):
    return keep_words(scene["up"], scene["reference"], scene["guidance"], reader=reader, mode=CHANGED_WORDS)


def test_changed_words_repairs_only_the_wrong_word_and_it_reads_right(scene, changed, reader):
    report = changed.report
    repaired = [w for w in report.words if w.action != "left"]
    assert [(w.expected, w.found) for w in repaired] == [("daily", "daiiy")]
    assert repaired[0].final_status == "kept" and report.f1_before == 0.75 and report.f1_after == 1.0
    assert compare_words(scene["guidance"], reader(changed.image)).counts.f1 == 1.0
    outside = changed.mask == 0
    assert torch.equal(changed.image[:, outside], scene["up"][:, outside])  # exactly the upscaler's
    assert (changed.mask > 0).float().mean() < 0.08  # one word box, not the picture
    assert report.changed_pixels == int((changed.image != scene["up"]).any(dim=0).sum()) > 0


def test_the_least_visible_repair_that_reads_right_is_kept_and_stays_sharp(scene, changed):
    (word,) = [w for w in changed.report.words if w.action != "left"]
    assert word.repair == DETAIL  # the first rung read right: nothing blurrier was pasted
    inside = (changed.mask == 1).float()
    kept, upscaler = edge_energy(changed.image, inside), edge_energy(scene["up"], inside)
    reference = edge_energy(match_reference(scene["reference"][None], scene["up"][None])[0], inside)
    assert kept > 0.4 * upscaler and kept > 4 * reference  # no blurry rectangle in a sharp picture
    assert '"daily": read "daiiy" -> composited (detail), now right' in format_guard_report([changed.report])


def test_the_repair_has_no_seam_at_the_mask_edge(scene, changed):
    """Across the feathered band the step between neighbours is no larger than the upscaler's own."""
    band = (changed.mask > 0) & (changed.mask < 1)
    assert band.sum() > 100
    step = (changed.image[:, :, 1:] - changed.image[:, :, :-1]).abs().amax(dim=0)
    own = (scene["up"][:, :, 1:] - scene["up"][:, :, :-1]).abs().amax(dim=0)
    in_band = band[:, 1:] & band[:, :-1]
    assert step[in_band].mean() <= 1.25 * own[in_band].mean()


def test_all_text_touches_every_word_box_and_keeps_them_reading(scene, reader):
    result = keep_words(scene["up"], scene["reference"], scene["guidance"], reader=reader, mode=ALL_TEXT)
    assert {w.expected for w in result.report.words if w.action == "composited"} == {"open", "daily", "fresh", "bread"}
    assert result.report.f1_after == 1.0
    outside = result.mask == 0
    assert torch.equal(result.image[:, outside], scene["up"][:, outside])
    assert "\"open\": kept -> composited (" in format_guard_report([result.report])


def test_no_guidance_words_and_none_read_pass_the_image_through_untouched(scene):
    calls = []
    result = keep_words(scene["up"], scene["reference"], OcrResult(10, 10, ()),
                        reader=lambda image: calls.append(1) or OcrResult(10, 10, ()))
    assert result.image is scene["up"] and result.mask.max() == 0 and calls == [1]
    assert "no guidance words and none read in the image: it passes through untouched" in format_guard_report(
        [result.report])


def test_with_no_guidance_words_every_word_read_is_an_invention_and_repaired(scene, reader):
    """A reference that reads nothing (a soft photo) and an upscaler that drew words into it: they go."""
    blank = torch.full_like(scene["up"], 0.8)
    result = keep_words(scene["up"], blank, OcrResult(480, 240, ()), reader=reader)
    assert result.report.f1_before == 0.0 and result.report.f1_after == 1.0
    assert {w.status for w in result.report.words} == {"invented"}
    assert all(w.action == "composited" and w.final_status is None for w in result.report.words)
    assert reader(result.image).regions == ()
    outside = result.mask == 0
    assert torch.equal(result.image[:, outside], scene["up"][:, outside]) and bool(outside.any())
    assert "no guidance words: every word read in the image is invented and repaired" in format_guard_report(
        [result.report])


def test_an_lq_reference_is_enlarged_and_the_size_said(scene, reader):
    lq = scene["reference"][None]
    small = torch.nn.functional.interpolate(lq, scale_factor=0.5, mode="area")[0]
    result = keep_words(scene["up"], small, scene["guidance"], reader=reader)
    assert result.report.notes == ["reference 240x120 enlarged x2 to 480x240 with bicubic"]
    odd = small[:, :, :-3]  # 237 wide: not a whole multiple, same picture within 2 %
    note = keep_words(scene["up"], odd, scene["guidance"], reader=reader).report.notes[0]
    assert "x2.03 (not a whole multiple)" in note and "480x240" in note


def test_a_reference_of_another_shape_is_an_error_naming_it(scene, reader):
    with pytest.raises(InvalidInputError, match="'reference' is 120x120 and 'image' is 480x240"):
        keep_words(scene["up"], torch.rand(3, 120, 120), scene["guidance"], reader=reader)


def test_bad_settings_and_batches_name_the_input(scene, reader):
    image = scene["up"]
    with pytest.raises(InvalidInputError, match="mode"):
        keep_words(image, image, scene["guidance"], reader=reader, mode="every word")
    with pytest.raises(InvalidInputError, match="'reference' holds 2 items but 'image' holds 3"):
        keep_words_batch(image[None].repeat(3, 1, 1, 1), image[None].repeat(2, 1, 1, 1), [scene["guidance"]],
                         reader=reader)
    with pytest.raises(InvalidInputError, match="'image' must be a \\[3, H, W\\]"):
        keep_words(image[:1], image, scene["guidance"], reader=reader)


def test_sharpened_reaches_the_upscalers_edge_energy_without_halos_and_reference_is_plain():
    torch.manual_seed(0)
    hard = (torch.rand(1, 3, 6, 6) > 0.5).float().repeat_interleave(8, -1).repeat_interleave(8, -2)  # crisp blocks
    soft = blur(hard, 2)  # a soft reference: the edges spread over ~4 px, as at x4
    weight = torch.ones(48, 48)
    sharpened = repair_patch(SHARPENED, hard, soft, weight, "none")
    assert band_energy(sharpened, weight) > 0.6 * band_energy(hard, weight) > 6 * band_energy(soft, weight)
    padded = torch.nn.functional.pad(soft, (2, 2, 2, 2), mode="replicate")
    low = -torch.nn.functional.max_pool2d(-padded, 5, stride=1)
    high = torch.nn.functional.max_pool2d(padded, 5, stride=1)
    assert (sharpened >= low - 1e-6).all() and (sharpened <= high + 1e-6).all()  # no overshoot: no halo
    assert torch.equal(repair_patch(SHARPENED, soft, hard, weight, "none"), hard)  # already crisp: unchanged
    assert torch.allclose(repair_patch(REFERENCE, hard, soft, weight, "none"), soft.clamp(0, 1))
    assert [rung.name for rung in LADDER] == ["detail", "sharpened", "reference", "reference, margin 1 x height",
                                              "reference, margin 3 x height"]


def test_guidance_words_repairs_the_guidance_words_and_leaves_inventions(scene, reader):
    extra = upscaler_look(render(WRONG + [["SALE"]]))  # DAIIY, and a line the guidance does not have
    result = keep_words(extra, scene["reference"], scene["guidance"], reader=reader, mode="guidance words")
    by_word = {w.expected or w.found: w for w in result.report.words}
    assert by_word["daily"].action == "composited" and by_word["daily"].final_status == "kept"
    assert by_word["sale"].status == "invented" and by_word["sale"].action == "left as drawn"
    height, width = extra.shape[-2:]
    x0, y0, x1, y1 = pixel_box(by_word["sale"].box, width, height)
    assert (result.mask[y0:y1, x0:x1] == 0).all()
    outside = result.mask == 0
    assert torch.equal(result.image[:, outside], extra[:, outside])
    assert "1 invented word(s) left as drawn (mode 'guidance words'): \"sale\"" in format_guard_report([result.report])


def test_guidance_words_with_no_guidance_words_passes_the_image_through(scene, reader):
    result = keep_words(scene["up"], scene["reference"], OcrResult(480, 240, ()), reader=reader, mode="guidance words")
    assert result.image is scene["up"] and result.mask.max() == 0
    assert "no guidance words: 'guidance words' has nothing to repair, the image passes through untouched" in (
        format_guard_report([result.report]))
