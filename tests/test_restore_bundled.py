"""The shipped Text Restore file: small, safetensors, what its card says, and never worse than bicubic."""

from __future__ import annotations

import pytest
from PIL import Image

from glyphsr_core.restore import BUNDLED_PATH, load_restorer, restore_pil

#: the card's held-out check (README, Text Restore): 12 images at 256 px rendered with Pillow's bundled
#: font only (the same on every machine), corpus seed 7, bicubic down-sampling, read by the bundled OCR
HELD_OUT = {"n": 12, "size": 256, "seed": 7}
RECORDED_F1 = {4: 0.5505}
RECORDED_BICUBIC_F1 = {4: 0.4731}
TOLERANCE = 0.05  # OCR and font rasterisation differ a little between machines


def test_bundled_file_is_small_safetensors_with_its_training_record():
    assert BUNDLED_PATH.is_file() and BUNDLED_PATH.suffix == ".safetensors"
    assert BUNDLED_PATH.stat().st_size <= 20 * 2**20
    loaded = load_restorer(BUNDLED_PATH)
    assert (loaded.scale, loaded.architecture) == (4, "compact")
    record = loaded.metadata
    assert record["step"] >= 1 and "train_config" in record
    assert record["validation"][-1]["step"] == record["step"]
    assert record["blend_with_bicubic"] == 0.5 and set(record["final_validation"]) == {"f1_x4", "f1_x8"}


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    from glyphsr_core.data.corpus import CorpusConfig, load_corpus, make_corpus
    from glyphsr_core.data.fonts import FontChoice

    root = tmp_path_factory.mktemp("held_out")
    config = CorpusConfig(out=root, size=HELD_OUT["size"], scales=(4, 8), seed=HELD_OUT["seed"], mode="bicubic",
                          fonts=(FontChoice("builtin", None),))
    make_corpus(config, HELD_OUT["n"])
    return load_corpus(root)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [4])  # x8 of 256 px leaves text OCR cannot read at all: see the card
def test_recorded_ocr_f1_on_the_fixed_held_out_set(held_out, scale):
    from glyphsr_core.metrics import WordCounts, word_counts
    from glyphsr_core.ocr import read_text

    loaded = load_restorer(BUNDLED_PATH)
    ours, bicubic = WordCounts(), WordCounts()
    for sample in held_out:
        lq = Image.open(sample.lq_paths[scale]).convert("RGB")
        gt = [w.text for w in sample.words]
        ours = ours + word_counts(list(read_text(restore_pil(loaded.model, loaded.scale, lq, scale)).words), gt)
        bicubic = bicubic + word_counts(list(read_text(lq.resize(sample.size, Image.Resampling.BICUBIC)).words), gt)
    assert abs(bicubic.f1 - RECORDED_BICUBIC_F1[scale]) <= TOLERANCE, bicubic.f1
    assert abs(ours.f1 - RECORDED_F1[scale]) <= TOLERANCE, ours.f1
    assert ours.f1 >= bicubic.f1
