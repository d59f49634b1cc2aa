"""The foundation nodes as ComfyUI calls them (against the stand-in comfy modules)."""

import numpy as np
import pytest
import torch

import comfy.model_management as mm
import comfy.utils as cu
from textimages import render_words

from glyphsr_core.sampling.colorfix import color_fix


@pytest.fixture(scope="module")
def sign_tensor():
    image, _ = render_words([["OPEN", "NOW"], ["FRESH", "BREAD"]], size=(480, 240), font_size=40)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)[None]


def node(pack, node_id):
    return pack.NODE_CLASS_MAPPINGS[node_id]()


def test_registration_follows_comfyui_conventions(pack):
    assert pack.NODE_CLASS_MAPPINGS, "no nodes registered"
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        assert node_id.startswith("GlyphSR_")
        assert pack.NODE_DISPLAY_NAME_MAPPINGS[node_id].startswith("GlyphSR ")
        assert cls.CATEGORY.split("/")[0] == "GlyphSR"
        spec = cls.INPUT_TYPES()
        assert set(spec) <= {"required", "optional", "hidden"}
        assert callable(getattr(cls, cls.FUNCTION))
        if hasattr(cls, "RETURN_NAMES"):
            assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES)
        for name, entry in {**spec.get("required", {}), **spec.get("optional", {})}.items():
            kind = entry[0]
            assert isinstance(kind, (str, list)), name
            if isinstance(kind, list):
                default = entry[1].get("default") if len(entry) > 1 else None
                assert default is None or default in kind, name


def test_ocr_extract_outputs_for_a_batch(pack, sign_tensor):
    batch = torch.cat([sign_tensor, torch.flip(sign_tensor, dims=[2]) * 0 + 0.9])  # a sign and a blank page
    text, as_json, mask, preview = node(pack, "GlyphSR_OCRExtract").extract(batch, 0.5, "auto", 4)
    assert [r.words for r in text] == [["OPEN", "NOW", "FRESH", "BREAD"], []]
    assert '"OPEN"' in as_json
    assert mask.shape == (2, 240, 480) and mask.dtype == torch.float32
    assert mask[0].sum() > 0 and mask[1].sum() == 0
    assert preview.shape == (2, 240, 480, 3)
    assert cu.created_bars[-1].updates == [1, 2]


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_ocr_extract_accepts_gray_and_alpha_images(pack, sign_tensor, channels):
    gray = sign_tensor.mean(-1, keepdim=True)
    image = {1: gray, 2: torch.cat([gray, torch.ones_like(gray)], -1), 4: torch.cat([sign_tensor, torch.ones_like(gray)], -1)}[channels]
    text, _, mask, preview = node(pack, "GlyphSR_OCRExtract").extract(image, 0.5, "auto", 0)
    assert text[0].words == ["OPEN", "NOW", "FRESH", "BREAD"]
    assert preview.shape[-1] == 3 and mask.shape == (1, 240, 480)


def test_ocr_extract_rejects_an_empty_batch(pack):
    with pytest.raises(ValueError, match="empty batch"):
        node(pack, "GlyphSR_OCRExtract").extract(torch.zeros(0, 64, 64, 3), 0.5, "auto", 0)


def test_ocr_extract_stops_when_interrupted(pack, sign_tensor):
    mm.interrupt_current_processing(True)
    with pytest.raises(mm.InterruptProcessingException):
        node(pack, "GlyphSR_OCRExtract").extract(sign_tensor, 0.5, "auto", 0)


def test_text_from_string_uses_reference_size(pack, sign_tensor):
    (results,) = node(pack, "GlyphSR_TextFromString").parse("OPEN @ 48,24,240,120", 8, 8, reference=sign_tensor)
    assert (results[0].width, results[0].height) == (480, 240)
    assert results[0].regions[0].box == pytest.approx((0.1, 0.1, 0.5, 0.5))


def test_text_from_string_malformed_json_is_explained(pack):
    with pytest.raises(ValueError, match="not valid"):
        node(pack, "GlyphSR_TextFromString").parse('{"regions": [', 64, 64)


def test_build_prompts_pairs_captions_with_batch_results(pack):
    (results,) = node(pack, "GlyphSR_TextFromString").parse(
        '[{"width": 10, "height": 10, "regions": [{"text": "(SALE)", "box": [0, 0, 0.2, 0.2]}]},'
        ' {"width": 10, "height": 10, "regions": []}]', 10, 10)
    out = node(pack, "GlyphSR_BuildPrompts").build(
        caption=["a shop", "a wall"], max_words=[24], include_locations=[True], scene_suffix=["sharp"],
        scene_negative=["blur"], text_suffix=["crisp text"], text_negative=["garbled"], text=[results])
    scene_pos, scene_neg, text_pos, text_neg, report = out
    assert scene_pos == ["a shop, sharp", "a wall, sharp"]
    assert text_pos[0] == 'the text "\\(SALE\\)" at the top left, a shop, crisp text'  # escaped for CLIP Text Encode
    assert text_pos[1] == "a wall, sharp, crisp text"
    assert scene_neg == ["blur", "blur"] and text_neg == ["garbled", "garbled"]
    assert len(report) == 2


def _build(pack, captions, results):
    return node(pack, "GlyphSR_BuildPrompts").build(
        caption=captions, max_words=[24], include_locations=[False], scene_suffix=["s"], scene_negative=["sn"],
        text_suffix=["t"], text_negative=["tn"], text=[results])


def test_build_prompts_refuses_batches_that_do_not_pair(pack):
    (results,) = node(pack, "GlyphSR_TextFromString").parse(
        '[{"width": 8, "height": 8, "regions": [{"text": "ONE"}]},'
        ' {"width": 8, "height": 8, "regions": [{"text": "TWO"}]}]', 8, 8)
    with pytest.raises(ValueError, match=r"'caption' holds 3 item\(s\) but 'text' holds 2"):
        _build(pack, ["a", "b", "c"], results)
    # one caption for every image, or one OCR result for every caption
    assert _build(pack, ["x"], results)[2] == ['the text "ONE", x, t', 'the text "TWO", x, t']
    assert _build(pack, ["a", "b"], results[:1])[2] == ['the text "ONE", a, t', 'the text "ONE", b, t']


def test_build_prompts_without_text_input(pack):
    out = node(pack, "GlyphSR_BuildPrompts").build(["x"], [24], [True], ["s"], ["sn"], ["t"], ["tn"])
    assert [v[0] for v in out[:4]] == ["x, s", "sn", "x, s, t", "tn"]


def test_glyph_render_size_from_reference(pack, sign_tensor):
    (results,) = node(pack, "GlyphSR_TextFromString").parse("OPEN @ 0.1,0.1,0.5,0.5", 10, 10)
    glyph, mask = node(pack, "GlyphSR_GlyphRender").render(results, 64, 64, 2, "", reference=sign_tensor)
    assert glyph.shape == (1, 240, 480, 3) and mask.shape == (1, 240, 480)
    assert torch.equal(glyph[..., 0], glyph[..., 2])
    assert glyph.max() == 1.0 and mask[0, 60, 120] == 1.0 and mask[0, 200, 400] == 0.0


def test_glyph_render_requires_text(pack):
    with pytest.raises(ValueError, match="GLYPHSR_TEXT"):
        node(pack, "GlyphSR_GlyphRender").render([], 64, 64, 0, "")


@pytest.mark.parametrize("method", ["adain", "wavelet"])
def test_color_fix_node_layout_and_gray_reference(pack, method):
    g = torch.Generator().manual_seed(0)
    cast = torch.tensor([0.4, 0.1, 0.2])  # a strong colour cast: red up, green down
    image = (torch.rand(2, 32, 48, 3, generator=g) * 0.5 + cast).clamp(0, 1)
    reference = torch.rand(1, 8, 12, 1, generator=g) * 0.4 + 0.3  # one gray image, smaller, for the batch
    (fixed,) = node(pack, "GlyphSR_ColorFix").fix(image, reference, method)
    assert fixed.shape == (2, 32, 48, 3)
    # ComfyUI's [B, H, W, C] in and out: the core fix on [B, C, H, W], the gray reference as three equal channels
    expected = color_fix(image.permute(0, 3, 1, 2), reference.expand(-1, -1, -1, 3).permute(0, 3, 1, 2), method)
    assert torch.allclose(fixed, expected.permute(0, 2, 3, 1), atol=1e-5)
    # the cast is gone: every channel of every image now has the gray reference's mean
    before = (image.mean(dim=(1, 2)) - reference.mean()).abs()
    after = (fixed.mean(dim=(1, 2)) - reference.mean()).abs()
    assert before.max() > 0.14 and after.max() < 0.01
    if method == "adain":  # and its spread
        assert torch.allclose(fixed.std(dim=(1, 2)), torch.full((2, 3), 0.0964), atol=2e-3)
