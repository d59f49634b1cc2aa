"""Dataset loaders on small fixture files written here in each dataset's published annotation layout."""

import numpy as np
import pytest
from PIL import Image

from glyphsr_core.data.datasets import (DatasetError, ImageDecodeError, load_dataset, lq_for, make_lq,
                                        parse_polygon_line)
from glyphsr_core.data.corpus import CorpusConfig, make_corpus
from glyphsr_core.data.corpus_fonts import FontChoice


def _image(path, size=(160, 120)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 190, 180)).save(path)
    return path


SVT_XML = """<?xml version="1.0" encoding="utf-8"?>
<tagset>
  <image>
    <imageName>img/14_03.jpg</imageName>
    <address>1 Main St</address>
    <lex>LIVING,ROOM,THEATRES</lex>
    <Resolution x="160" y="120"/>
    <taggedRectangles>
      <taggedRectangle height="20" width="50" x="10" y="30"><tag>LIVING</tag></taggedRectangle>
      <taggedRectangle height="22" width="40" x="70" y="31"><tag>ROOM</tag></taggedRectangle>
    </taggedRectangles>
  </image>
  <image>
    <imageName>img/15_01.jpg</imageName>
    <taggedRectangles></taggedRectangles>
  </image>
  <image>
    <imageName>img/gone.jpg</imageName>
    <taggedRectangles><taggedRectangle height="5" width="5" x="1" y="1"><tag>X</tag></taggedRectangle></taggedRectangles>
  </image>
</tagset>
"""


def test_svt_xml(tmp_path):
    (tmp_path / "test.xml").write_text(SVT_XML)
    _image(tmp_path / "img/14_03.jpg")
    _image(tmp_path / "img/15_01.jpg")
    dataset = load_dataset("svt", tmp_path)
    assert [s.id for s in dataset.samples] == ["14_03"]
    sample = dataset.samples[0]
    assert sample.gt_words == ["LIVING", "ROOM"]
    assert sample.words[0].polygon == ((10, 30), (60, 30), (60, 50), (10, 50))
    assert sample.load_image().size == (160, 120)
    assert dataset.skipped == {"no labelled words": ["15_01"], "image file missing": [str(tmp_path / "img/gone.jpg")]}
    with pytest.raises(FileNotFoundError, match="train.xml"):
        load_dataset("svt", tmp_path, split="train")


def test_ctw1500_original_32_value_layout():
    # xmin, ymin, xmax, ymax, then 14 offset points from (xmin, ymin)
    offsets = [0, 0, 10, 0, 20, 0, 30, 0, 40, 0, 50, 0, 60, 0, 60, 20, 50, 20, 40, 20, 30, 20, 20, 20, 10, 20, 0, 20]
    line = ",".join(str(v) for v in [100, 50, 160, 70] + offsets)
    polygon, text = parse_polygon_line(line)
    assert len(polygon) == 14 and polygon[0] == (100, 50) and polygon[7] == (160, 70)
    assert text is None
    assert parse_polygon_line(line + ",HELLO")[1] == "HELLO"


def test_ctw1500_folders_in_each_published_layout(tmp_path):
    root = tmp_path / "test"
    _image(root / "text_image/1001.jpg")
    _image(root / "text_image/1002.jpg")
    _image(root / "text_image/1003.jpg")
    _image(root / "text_image/1004.jpg")
    labels = root / "text_label_curve"
    labels.mkdir()
    # later text-spotting layout: absolute points then ####text; ### = don't care
    (labels / "1001.txt").write_text("10,10,60,10,60,30,10,30,####FOOD\n70,10,90,10,90,30,70,30,####COURT\n"
                                     "5,80,20,80,20,90,5,90,#######\n")
    # original layout without transcriptions: nothing to evaluate
    offsets = ",".join(["0,0"] * 7 + ["0,20"] * 7)
    (labels / "1002.txt").write_text(f"10,10,50,30,{offsets}\n")
    # label XML layout
    (labels / "1003.xml").write_text(
        '<Annotations><image file="1003.jpg"><box height="20" left="5" top="6" width="40">'
        "<label>OLATHE</label><segs>5,6,25,6,45,6,45,26,25,26,5,26</segs><pts x=\"10\" y=\"10\" /></box>"
        '<box height="10" left="50" top="50" width="10"><label>###</label></box></image></Annotations>')
    dataset = load_dataset("ctw1500", root)
    by_id = {s.id: s for s in dataset.samples}
    assert sorted(by_id) == ["1001", "1003"]
    assert by_id["1001"].gt_words == ["FOOD", "COURT"]
    assert len(by_id["1001"].words) == 3 and by_id["1001"].words[2].ignore
    assert by_id["1003"].gt_words == ["OLATHE"] and by_id["1003"].words[0].polygon[2] == (45, 6)
    assert dataset.skipped["no labelled words"] == ["1002"]
    assert dataset.skipped["no annotation file"] == [str(root / "text_image/1004.jpg")]


def test_ctw1500_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="SCUT-CTW1500 folder not found"):
        load_dataset("ctw1500", tmp_path / "missing")
    _image(tmp_path / "1.jpg")
    with pytest.raises(FileNotFoundError, match="no ctw1500 annotations"):
        load_dataset("ctw1500", tmp_path)
    (tmp_path / "1.txt").write_text("1,2,3,####X\n")
    with pytest.raises(DatasetError, match="1.txt line 1: odd number"):
        load_dataset("ctw1500", tmp_path)


def test_cute80_polygon_files_and_word_list(tmp_path):
    per_image = tmp_path / "a"
    _image(per_image / "CUTE80/001.jpg")
    (per_image / "Groundtruth").mkdir()
    (per_image / "Groundtruth/001.txt").write_text("10,10,40,5,70,10,70,30,40,25,10,30,####Pepsi\n")
    dataset = load_dataset("cute80", per_image)
    assert [s.gt_words for s in dataset.samples] == [["Pepsi"]]
    assert len(dataset.samples[0].words[0].polygon) == 6

    word_list = tmp_path / "b"
    _image(word_list / "timage/001.jpg", size=(80, 30))
    _image(word_list / "timage/002.jpg", size=(60, 30))
    (word_list / "timage/003.jpg").write_bytes(b"broken")
    (word_list / "test_label.txt").write_text("timage/001.jpg COFFEE\ntimage/002.jpg MARKET\ntimage/404.jpg LOST\n"
                                              "timage/003.jpg BROKEN\n")
    dataset = load_dataset("cute80", word_list)
    assert [(s.id, s.gt_words) for s in dataset.samples] == [("001", ["COFFEE"]), ("002", ["MARKET"])]
    assert dataset.samples[0].words[0].polygon == ((0, 0), (80, 0), (80, 30), (0, 30))
    assert dataset.skipped["image file missing"] == ["timage/404.jpg"]
    assert dataset.skipped["undecodable image"][0].startswith("timage/003.jpg")

    with pytest.raises(FileNotFoundError, match="word list"):
        load_dataset("cute80", tmp_path / "a" / "CUTE80")


def test_synthetic_corpus_and_its_stored_lq(tmp_path):
    make_corpus(CorpusConfig(out=tmp_path, size=128, scales=(4,), seed=1, fonts=(FontChoice("builtin", None),)), 2)
    dataset = load_dataset("synthetic", tmp_path)
    sample = dataset.samples[0]
    assert sample.gt_words and len(sample.words[0].polygon) == 4
    hq = sample.load_image()
    cropped, lq, params = lq_for(sample, hq, 4, "bicubic", 0)
    assert params is None  # the corpus' own LQ was used
    assert np.array_equal(np.asarray(lq), np.asarray(Image.open(sample.lq_paths[4]).convert("RGB")))
    _, lq8, params8 = lq_for(sample, hq, 8, "bicubic", 0)  # not stored: made now
    assert lq8.size == (16, 16) and params8["mode"] == "bicubic"


def test_make_lq_crops_and_is_deterministic_per_image(tmp_path):
    hq = Image.new("RGB", (161, 123), (50, 60, 70))
    cropped, lq, params = make_lq(hq, 8, "realistic", seed=4)
    assert cropped.size == (160, 120) and lq.size == (20, 15) and params["crop"] == [160, 120]
    assert np.array_equal(np.asarray(lq), np.asarray(make_lq(hq, 8, "realistic", seed=4)[1]))


def test_undecodable_image_raises_a_decode_error(tmp_path):
    (tmp_path / "test.xml").write_text(SVT_XML)
    _image(tmp_path / "img/15_01.jpg")
    (tmp_path / "img/14_03.jpg").write_bytes(b"\x00\x01 not a jpeg")
    sample = load_dataset("svt", tmp_path).samples[0]
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        sample.load_image()


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="synthetic, svt, ctw1500, cute80"):
        load_dataset("icdar", ".")
