"""Captioner core on tiny random-initialised LLaVA, Qwen2-VL and Idefics3 (SmolVLM) models built offline."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_vlms import BUILDERS, tiny_vlm

from glyphsr_core.types import OcrResult, TextRegion
from glyphsr_core.vlm import (
    DEFAULT_CAPTION_PROMPT,
    CaptionInputError,
    CorruptWeightsError,
    GenerationStopped,
    MissingProcessorError,
    ModelFolderError,
    RemoteCodeRequiredError,
    UnsupportedArchitectureError,
    VLMError,
    compose_prompt,
    load_captioner,
    resolve_dtype,
)
from glyphsr_core.vlm.processor import CaptionProcessor, QwenGridProcessor

KINDS = sorted(BUILDERS)
TOKENS = 5


def _images(count: int = 3) -> list[Image.Image]:
    rng = np.random.default_rng(7)
    sizes = [(64, 48), (40, 96), (80, 80), (56, 56)]
    return [Image.fromarray(rng.integers(0, 255, (sizes[i % 4][1], sizes[i % 4][0], 3), dtype=np.uint8))
            for i in range(count)]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "models" / "LLM"


@pytest.fixture(scope="session")
def captioners(tiny_root):
    return {kind: load_captioner(tiny_vlm(kind, tiny_root)) for kind in KINDS}


@pytest.fixture
def broken(tiny_root, tmp_path):
    """A copy of the tiny LLaVA folder to damage."""
    def make(name: str = "broken"):
        return shutil.copytree(tiny_vlm("llava", tiny_root), tmp_path / name)
    return make


@pytest.mark.parametrize("kind", KINDS)
def test_caption_returns_one_string_per_image_independent_of_batch(captioners, kind):
    captioner = captioners[kind]
    images = _images(3)
    captions = captioner.caption(images, max_new_tokens=TOKENS)
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    assert any(captions), "random models still produce some text"
    # each image is captioned on its own: the same caption whether alone or in a batch
    assert captioner.caption([images[1]], max_new_tokens=TOKENS) == [captions[1]]


@pytest.mark.parametrize("kind", KINDS)
def test_progress_reports_every_token_up_to_the_batch_total(captioners, kind):
    ticks = []
    captioners[kind].caption(_images(2), max_new_tokens=TOKENS,
                             on_token=lambda done, total: ticks.append((done, total)))
    assert {total for _, total in ticks} == {2 * TOKENS}
    done = [d for d, _ in ticks]
    assert done == sorted(done) and done[-1] == 2 * TOKENS
    assert len(ticks) >= TOKENS  # a tick per generated token, not per image


@pytest.mark.parametrize("kind", KINDS)
def test_stop_check_ends_generation_between_tokens(captioners, kind):
    ticks = []
    stop_after = 2

    def should_stop():
        return len(ticks) >= stop_after

    with pytest.raises(GenerationStopped):
        captioners[kind].caption(_images(2), max_new_tokens=50, should_stop=should_stop,
                                 on_token=lambda done, total: ticks.append(done))
    assert len(ticks) == stop_after, "generation must stop right after the check says so"
    assert max(ticks) <= stop_after


def test_stop_before_start_generates_nothing(captioners):
    ticks = []
    with pytest.raises(GenerationStopped):
        captioners["llava"].caption(_images(1), max_new_tokens=TOKENS, should_stop=lambda: True,
                                    on_token=lambda d, t: ticks.append(d))
    assert ticks == []


@pytest.mark.parametrize("kind", KINDS)
def test_sampling_is_reproducible_with_a_seed(captioners, kind):
    captioner = captioners[kind]
    image = _images(1)
    first = captioner.caption(image, max_new_tokens=8, temperature=1.0, seed=11)
    assert captioner.caption(image, max_new_tokens=8, temperature=1.0, seed=11) == first
    others = {captioner.caption(image, max_new_tokens=8, temperature=1.0, seed=s)[0] for s in (1, 2, 3)}
    assert len(others | {first[0]}) > 1, "different seeds give different samples"
    greedy = captioner.caption(image, max_new_tokens=8)
    assert captioner.caption(image, max_new_tokens=8, seed=5) == greedy  # greedy ignores the seed


def test_one_prompt_per_image_is_used(captioners):
    captioner = captioners["qwen2_vl"]
    image = _images(1)[0]
    alone = [captioner.caption([image], prompt=p, max_new_tokens=TOKENS)[0] for p in ("Describe.", "List colours.")]
    assert captioner.caption([image, image], prompt=["Describe.", "List colours."], max_new_tokens=TOKENS) == alone
    with pytest.raises(CaptionInputError, match="3 prompts for 2 images"):
        captioner.caption([image, image], prompt=["a", "b", "c"], max_new_tokens=TOKENS)


def test_qwen_uses_its_full_processor_or_the_grid_fallback(captioners):
    try:
        import torchvision  # noqa: F401
    except ImportError:
        assert isinstance(captioners["qwen2_vl"].processor, QwenGridProcessor)
    else:
        assert type(captioners["qwen2_vl"].processor) is CaptionProcessor
    assert type(captioners["llava"].processor) is type(captioners["idefics3"].processor) is CaptionProcessor


def test_grid_fallback_encodes_like_the_full_processor(tiny_root):
    pytest.importorskip("torchvision")
    from glyphsr_core.vlm.folder import inspect_model_folder
    from glyphsr_core.vlm.processor import _qwen_grid_processor, build_processor

    folder = inspect_model_folder(tiny_vlm("qwen2_vl", tiny_root))
    full, fallback = build_processor(folder), _qwen_grid_processor(folder)
    image = _images(2)[1]
    text = full.format_prompt("Describe.")
    assert fallback.format_prompt("Describe.") == text
    a, b = full.encode(image, text), fallback.encode(image, text)
    for key in ("input_ids", "attention_mask", "image_grid_thw", "mm_token_type_ids"):
        assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), key
    assert torch.allclose(a["pixel_values"], b["pixel_values"], atol=1e-5)


def test_small_images_are_enlarged_and_tiny_ones_refused(captioners, monkeypatch):
    from glyphsr_core.vlm.captioner import UPSCALE_BELOW

    captioner = captioners["qwen2_vl"]
    seen = []
    encode = captioner.processor.encode

    def spy(image, text):
        seen.append(image)
        return encode(image, text)

    monkeypatch.setattr(captioner.processor, "encode", spy)
    assert len(captioner.caption([Image.new("RGB", (12, 10), "red")], max_new_tokens=2)) == 1
    # what the model saw: short side enlarged to UPSCALE_BELOW (64 px), aspect kept (12 x 10 -> 77 x 64), colour kept
    assert UPSCALE_BELOW == 64 and seen[0].size == (77, 64)
    assert seen[0].getpixel((0, 0)) == seen[0].getpixel((76, 63)) == (255, 0, 0)
    captioner.caption([Image.new("RGB", (96, 64), "blue")], max_new_tokens=2)
    assert seen[1].size == (96, 64)  # large enough: passed as it is
    with pytest.raises(CaptionInputError, match=r"image 2 of 2 is 1x1 px"):
        captioner.caption([Image.new("RGB", (32, 32)), Image.new("RGB", (1, 1))], max_new_tokens=2)


@pytest.mark.parametrize("prompt", ["", "   \n"])
def test_empty_prompt_is_refused(captioners, prompt):
    with pytest.raises(CaptionInputError, match="prompt is empty"):
        captioners["llava"].caption(_images(1), prompt=prompt, max_new_tokens=2)


def test_bad_generation_settings_are_refused(captioners):
    with pytest.raises(CaptionInputError, match="max_new_tokens"):
        captioners["llava"].caption(_images(1), max_new_tokens=0)
    with pytest.raises(CaptionInputError, match="temperature"):
        captioners["llava"].caption(_images(1), max_new_tokens=2, temperature=-1.0)
    with pytest.raises(CaptionInputError, match="no images"):
        captioners["llava"].caption([], max_new_tokens=2)


def test_compose_prompt_appends_ocr_words_only_when_asked():
    result = OcrResult(100, 50, (TextRegion("OPEN", 0.9), TextRegion("CAFE", 0.8)))
    assert compose_prompt(" Describe. ", result) == "Describe."
    assert compose_prompt("Describe.", result, append_words=True) == \
        'Describe. The image contains the words: "OPEN", "CAFE".'
    assert compose_prompt("Describe.", OcrResult(10, 10), append_words=True) == "Describe."
    assert "do not transcribe" in DEFAULT_CAPTION_PROMPT


def test_resolve_dtype():
    assert resolve_dtype("auto", "cpu", bf16_ok=True) == torch.float32
    assert resolve_dtype("auto", "cuda", bf16_ok=True, fp16_ok=True) == torch.bfloat16
    assert resolve_dtype("auto", "cuda", bf16_ok=False, fp16_ok=True) == torch.float16
    assert resolve_dtype("auto", "cuda", bf16_ok=False, fp16_ok=False) == torch.float32
    assert resolve_dtype("fp16", "cpu") == torch.float16
    with pytest.raises(CaptionInputError, match="precision"):
        resolve_dtype("int4")


def test_precision_choice_sets_the_weight_dtype(tiny_root):
    captioner = load_captioner(tiny_vlm("llava", tiny_root), dtype="bf16")
    assert captioner.dtype == torch.bfloat16
    assert {p.dtype for p in captioner.model.parameters()} == {torch.bfloat16}


def test_weight_bytes_counts_tied_tensors_once(captioners):
    model = captioners["llava"].model  # the tiny LLaVA ties its output layer to the input embeddings
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    unique = sum(p.nbytes for p in model.parameters()) + sum(b.nbytes for b in model.buffers())
    assert captioners["llava"].weight_bytes() == unique  # parameters() yields a shared tensor once
    assert sum(t.nbytes for t in model.state_dict().values()) > unique - sum(b.nbytes for b in model.buffers())
    assert captioners["llava"].inference_bytes(256) > captioners["llava"].inference_bytes(16)


# --- bad model folders: each error is a ValueError naming the folder and what is wrong ---

def _expect(error, folder, match, **kwargs):
    with pytest.raises(error, match=match) as info:
        load_captioner(folder, **kwargs)
    assert isinstance(info.value, (VLMError, ValueError)) and str(folder) in str(info.value)


def test_missing_transformers_names_the_package(broken, monkeypatch):
    folder = broken()
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match="pip install 'transformers"):
        load_captioner(folder)


def test_too_old_transformers_names_the_version(broken, monkeypatch):
    import transformers

    folder = broken()
    monkeypatch.setattr(transformers, "__version__", "4.50.3")
    with pytest.raises(ImportError, match=r"transformers 4\.56 or newer.*4\.50\.3 is installed"):
        load_captioner(folder)


def test_missing_folder_and_config(tmp_path):
    _expect(ModelFolderError, tmp_path / "nowhere", "does not exist")
    (tmp_path / "empty").mkdir()
    _expect(ModelFolderError, tmp_path / "empty", "no config.json")


def test_unreadable_config(broken):
    folder = broken()
    (folder / "config.json").write_text("{not json")
    _expect(ModelFolderError, folder, "not valid JSON")
    (folder / "config.json").write_text(json.dumps({"hidden_size": 8}))
    _expect(UnsupportedArchitectureError, folder, "no 'model_type'")


def test_unsupported_architectures(broken):
    folder = broken()
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
    _expect(UnsupportedArchitectureError, folder, "not an image-text-to-text")
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "made_up_vlm"}))
    _expect(UnsupportedArchitectureError, folder, "unknown to transformers")


def test_remote_code_needs_the_switch(broken):
    folder = broken()
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="made_up_vlm", auto_map={"AutoConfig": "configuration_x.XConfig"})
    (folder / "config.json").write_text(json.dumps(config))
    _expect(RemoteCodeRequiredError, folder, "trust_remote_code")


def test_missing_tokenizer_or_image_processor(broken):
    folder = broken("no_tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    _expect(MissingProcessorError, folder, "no tokenizer files")
    folder = broken("no_image_processor")
    (folder / "processor_config.json").unlink()
    _expect(MissingProcessorError, folder, "no image processor")


def test_corrupt_or_missing_weights(broken):
    folder = broken("truncated")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    _expect(CorruptWeightsError, folder, "cannot read the weights")

    folder = broken("pickled")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    _expect(CorruptWeightsError, folder, "safetensors only")

    folder = broken("none")
    (folder / "model.safetensors").unlink()
    _expect(CorruptWeightsError, folder, "has no weights")


def test_weights_that_do_not_match_the_config(broken):
    from safetensors.torch import load_file, save_file

    folder = broken("partial")
    tensors = load_file(folder / "model.safetensors")
    dropped = sorted(k for k in tensors if "vision" in k)[:4]
    save_file({k: v for k, v in tensors.items() if k not in dropped}, folder / "model.safetensors",
              metadata={"format": "pt"})
    _expect(CorruptWeightsError, folder, "do not match config.json")
