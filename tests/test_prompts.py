import pytest

from glyphsr_core.text.prompts import PromptTemplates, build_prompts, location_phrase, quote_word
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box


def _region(text, cx, cy, w=0.1, h=0.05):
    return TextRegion(text, 0.9, quad_from_box((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))


TEMPLATES = PromptTemplates(scene_suffix="SCENE_SUFFIX", scene_negative="SCENE_NEG", text_suffix="TEXT_SUFFIX",
                            text_negative="TEXT_NEG")


@pytest.mark.parametrize(
    "cx, cy, phrase",
    [(0.1, 0.1, "top left"), (0.5, 0.1, "top"), (0.9, 0.1, "top right"), (0.1, 0.5, "left"), (0.5, 0.5, "center"),
     (0.9, 0.5, "right"), (0.1, 0.9, "bottom left"), (0.5, 0.9, "bottom"), (0.99, 0.99, "bottom right"),
     (1.0, 1.0, "bottom right"), (0.0, 0.0, "top left")],
)
def test_location_grid(cx, cy, phrase):
    assert location_phrase(_region("A", cx, cy)) == phrase


def test_words_come_first_with_locations_then_caption_then_suffix():
    result = OcrResult(100, 100, (_region("OPEN", 0.1, 0.1), _region("24/7", 0.5, 0.5)))
    prompts = build_prompts("a cafe storefront at night", result, templates=TEMPLATES)
    assert prompts.text_positive == (
        'the text "OPEN" at the top left, "24/7" at the center, a cafe storefront at night, TEXT_SUFFIX'
    )
    assert prompts.scene_positive == "a cafe storefront at night, SCENE_SUFFIX"
    assert (prompts.scene_negative, prompts.text_negative) == ("SCENE_NEG", "TEXT_NEG")
    assert prompts.words_used == ("OPEN", "24/7") and prompts.words_dropped == ()


def test_no_text_falls_back_to_scene_prompt_plus_text_suffix():
    for result in (None, OcrResult(10, 10, ())):
        prompts = build_prompts("a street", result, templates=TEMPLATES)
        assert prompts.text_positive == "a street, SCENE_SUFFIX, TEXT_SUFFIX"
        assert "no text" in prompts.summary()


def test_empty_caption_and_no_text_still_give_prompts():
    prompts = build_prompts("", None, templates=TEMPLATES)
    assert prompts.scene_positive == "SCENE_SUFFIX"
    assert prompts.text_positive == "SCENE_SUFFIX, TEXT_SUFFIX"


def test_quotes_inside_words_stay_balanced():
    result = OcrResult(10, 10, (_region('say "hi"', 0.5, 0.5),))
    prompts = build_prompts("x", result, templates=TEMPLATES)
    assert "\"say 'hi'\"" in prompts.text_positive
    assert prompts.text_positive.count('"') % 2 == 0


def test_weight_syntax_is_escaped_for_comfyui():
    assert quote_word("(OPEN)", escape_weights=True) == '"\\(OPEN\\)"'
    assert quote_word("(OPEN)") == '"(OPEN)"'
    # ComfyUI unescapes only \\( and \\): square brackets and backslashes must reach CLIP unchanged
    assert quote_word("[SALE]", escape_weights=True) == '"[SALE]"'
    assert quote_word("C:\\DATA", escape_weights=True) == '"C:\\DATA"'


def _as_comfyui_reads(prompt: str) -> str:
    """The text ComfyUI's tokenizer hands CLIP, for a prompt that must carry no weights.

    ComfyUI (comfy/sd1_clip.py) protects the two escapes `\\(` and `\\)`, reads any other bracket as a
    weight group, and turns the protected escapes back into plain brackets.
    """
    protected = prompt.replace("\\)", "\0\1").replace("\\(", "\0\2")
    assert "(" not in protected and ")" not in protected, f"ComfyUI would read a weight in {prompt!r}"
    return protected.replace("\0\1", ")").replace("\0\2", "(")


@pytest.mark.parametrize("word", ["(OPEN)", "[SALE]", "(x:1.5)", "((24/7))", "C:\\(DATA)", "a\\", "\\)"])
def test_node_prompt_reaches_clip_as_the_headless_and_training_prompt(word):
    result = OcrResult(10, 10, (_region(word, 0.2, 0.2),))
    node = build_prompts("a shop", result, escape_weights=True).text_positive  # what Build Prompts gives CLIP Text Encode
    headless = build_prompts("a shop", result).text_positive  # the pipeline and training (diffusers: no weights)
    assert _as_comfyui_reads(node) == headless


def test_unicode_words_are_kept_verbatim():
    result = OcrResult(10, 10, (_region("東京駅", 0.2, 0.2), _region("Café", 0.8, 0.8), _region("🙂", 0.5, 0.5)))
    prompts = build_prompts("station", result)
    for word in ("東京駅", "Café", "🙂"):
        assert f'"{word}"' in prompts.text_positive


def test_duplicates_are_removed_case_insensitively_in_reading_order():
    result = OcrResult(10, 10, (_region("SALE", 0.1, 0.1), _region("sale", 0.9, 0.9), _region("NOW", 0.5, 0.5)))
    assert build_prompts("", result).words_used == ("SALE", "NOW")


def test_max_words_caps_and_reports_what_was_left_out():
    regions = tuple(_region(f"w{i}", (i % 10) / 10 + 0.05, (i // 10) / 20 + 0.02) for i in range(200))
    prompts = build_prompts("many words", OcrResult(10, 10, regions), max_words=24)
    assert len(prompts.words_used) == 24 and len(prompts.words_dropped) == 176
    assert prompts.words_used[0] == "w0" and prompts.words_dropped[0] == "w24"
    assert '"w23"' in prompts.text_positive and '"w24"' not in prompts.text_positive
    assert "w24" in prompts.summary()


def test_words_without_position_have_no_location_phrase():
    result = OcrResult(10, 10, (TextRegion("HELLO"),))
    assert build_prompts("", result, templates=TEMPLATES).text_positive.startswith('the text "HELLO", ')


def test_locations_can_be_switched_off():
    result = OcrResult(10, 10, (_region("OPEN", 0.1, 0.1),))
    assert build_prompts("", result, include_locations=False).text_positive.startswith('the text "OPEN", ')


def test_negative_max_words_is_rejected():
    with pytest.raises(ValueError, match="max_words"):
        build_prompts("", None, max_words=-1)
