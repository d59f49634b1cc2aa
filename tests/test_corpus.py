"""The synthetic corpus: files match metadata rows, words are where the metadata says, determinism."""

import json
import numpy as np
import pytest
from PIL import Image

from glyphsr_core.data.corpus import CorpusConfig, CorpusError, load_corpus, make_corpus, render_scene
from glyphsr_core.data.corpus_fonts import FontChoice, check_font, discover_fonts
from glyphsr_core.text.glyphs import render_glyph_map, render_text_mask

BUILTIN = (FontChoice("builtin", None),)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    config = CorpusConfig(out=out, size=384, scales=(4, 8), seed=7, fonts=BUILTIN)
    report = make_corpus(config, 6, workers=1)
    return out, report


def test_rows_match_the_interface_and_every_file_exists(corpus):
    out, report = corpus
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == report.samples == 6
    assert [r["id"] for r in rows] == [f"{i:06d}" for i in range(6)]
    for row in rows:
        assert set(row) == {"id", "hq", "lq", "mask", "glyph", "size", "words", "font", "colors", "degradation", "seed"}
        assert Image.open(out / row["hq"]).size == (384, 384) == tuple(row["size"])
        assert set(row["lq"]) == set(row["degradation"]) == {"4", "8"}
        assert Image.open(out / row["lq"]["4"]).size == (96, 96)
        assert Image.open(out / row["lq"]["8"]).size == (48, 48)
        assert row["degradation"]["8"]["lq_size"] == [48, 48]
        assert Image.open(out / row["mask"]).mode == "L" and Image.open(out / row["glyph"]).mode == "L"
        assert row["words"] and all(len(w["quad"]) == 4 for w in row["words"])
        assert len(row["colors"]["text"]) == len(row["words"])
    assert sum(len(r["words"]) for r in rows) == report.words
    samples = load_corpus(out)
    assert [s.id for s in samples] == [r["id"] for r in rows]
    assert samples[0].lq_paths[8].is_file() and samples[0].words[0].text == rows[0]["words"][0]["text"]


def test_words_lie_inside_the_image_and_the_mask_covers_them(corpus):
    out, _ = corpus
    for sample in load_corpus(out):
        mask = np.asarray(Image.open(sample.mask_path)) > 0
        glyph = np.asarray(Image.open(sample.glyph_path)) > 0
        hq = np.asarray(Image.open(sample.hq_path).convert("L"), dtype=np.float32)
        for word in sample.words:
            quad = np.array(word.quad)
            assert (quad >= 0).all() and (quad <= 384).all()
            cx, cy = quad.mean(axis=0).astype(int)
            assert mask[cy, cx]
        # glyph map and mask are exactly what the inference renderer draws for these words
        result = sample.ocr_result()
        assert np.array_equal(np.asarray(render_text_mask(result, 384, 384)) > 0, mask)
        assert np.array_equal(np.asarray(render_glyph_map(result, 384, 384)) > 0, glyph)
        # there is ink inside the word boxes: the image varies more inside the mask than just outside it
        assert hq[mask].std() > 10


def test_same_seed_same_corpus_whatever_the_worker_count(tmp_path, corpus):
    out, _ = corpus
    config = CorpusConfig(out=tmp_path, size=384, scales=(4, 8), seed=7, fonts=BUILTIN)
    make_corpus(config, 3, workers=2)
    assert (tmp_path / "metadata.jsonl").read_text().splitlines() == (out / "metadata.jsonl").read_text().splitlines()[:3]
    for name in ("hq/000002.png", "lq_x8/000002.png", "glyph/000001.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / name)), np.asarray(Image.open(out / name)))
    other = CorpusConfig(out=tmp_path / "other", size=384, scales=(4,), seed=8, fonts=BUILTIN)
    make_corpus(other, 1)
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "other/hq/000000.png")),
                              np.asarray(Image.open(out / "hq/000000.png")))


def test_ocr_of_hq_samples_finds_the_words_where_the_metadata_says(corpus):
    from glyphsr_core.text.metrics import micro_prf
    from glyphsr_core.ocr import read_text

    out, _ = corpus
    pairs = []
    for sample in load_corpus(out):
        result = read_text(Image.open(sample.hq_path))
        pairs.append((result.words, [w.text for w in sample.words]))
        by_text = {w.text.lower(): np.array(w.quad) for w in sample.words}
        for region in result.regions:
            quad = by_text.get(region.text.lower())
            if quad is None:
                continue
            cx, cy = np.array(region.center) * 384
            x0, y0 = quad.min(axis=0) - 4
            x1, y1 = quad.max(axis=0) + 4
            assert x0 <= cx <= x1 and y0 <= cy <= y1, (sample.id, region.text)
    assert micro_prf(pairs).f1 >= 0.95


def test_background_photos_and_broken_files(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (300, 200), (200, 180, 160)).save(photos / "wall.jpg")
    (photos / "broken.png").write_bytes(b"not an image")
    problems: list[str] = []
    for seed in range(12):
        scene = render_scene(np.random.default_rng(seed), 256, BUILTIN, [photos / "broken.png"], problems)
        assert scene.words
    assert problems and "broken.png" in problems[0]
    kinds = {render_scene(np.random.default_rng(s), 256, BUILTIN, [photos / "wall.jpg"]).colors["background"]["kind"]
             for s in range(8)}
    assert "photo" in kinds


def test_fonts_folder_errors_and_unusable_fonts(tmp_path):
    with pytest.raises(FileNotFoundError, match="fonts folder"):
        discover_fonts(tmp_path / "nope", system=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no font files"):
        discover_fonts(empty, system=False)
    (empty / "fake.ttf").write_bytes(b"garbage")
    fonts, rejected = discover_fonts(empty, system=False)
    assert [f.name for f in fonts] == ["builtin"]
    assert rejected and "cannot be read" in rejected[0][1]
    assert check_font(tmp_path / "STIXMath.ttf") == "symbol/math/emoji face"


def test_load_corpus_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus folder"):
        load_corpus(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="metadata.jsonl"):
        load_corpus(tmp_path)
    (tmp_path / "metadata.jsonl").write_text('{"id": "1", "hq": "hq/1.png"}\n')
    with pytest.raises(CorpusError, match="line 1: missing 'lq'"):
        load_corpus(tmp_path)
    row = {"id": "1", "hq": "hq/1.png", "lq": {"4": "lq/1.png"}, "mask": "m.png", "glyph": "g.png", "size": [8, 8], "words": []}
    (tmp_path / "metadata.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(CorpusError, match="missing"):
        load_corpus(tmp_path)


def test_make_corpus_cli_and_its_bad_input(tmp_path, capsys):
    from glyphsr_core.cli import main

    args = ["make-corpus", "--out", str(tmp_path / "c"), "--n", "2", "--size", "128", "--scales", "4",
            "--no-system-fonts", "--workers", "1"]
    assert main(args) == 0
    assert "wrote 2 samples" in capsys.readouterr().out
    assert len((tmp_path / "c/metadata.jsonl").read_text().splitlines()) == 2
    assert main([a if a != "128" else "130" for a in args]) == 2
    assert "not a multiple of scale 4" in capsys.readouterr().err
    assert main(args + ["--fonts", str(tmp_path / "no-fonts")]) == 2
    assert "fonts folder not found" in capsys.readouterr().err
