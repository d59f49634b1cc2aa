import json
import re

import pytest

from glyphsr_core.text.text_input import parse_text_input
from glyphsr_core.types import OcrResult, TextFormatError, TextRegion, quad_from_box, results_to_json


def test_plain_lines_with_and_without_boxes():
    (result,) = parse_text_input("OPEN\n# a comment\n\nCOFFEE @ 0.1, 0.2, 0.5, 0.4\nSALE @ 100 50 300 150", 1000, 500)
    assert result.words == ["OPEN", "COFFEE", "SALE"]
    assert result.regions[0].quad is None
    assert result.regions[1].box == pytest.approx((0.1, 0.2, 0.5, 0.4))
    assert result.regions[2].box == pytest.approx((0.1, 0.1, 0.3, 0.3))  # pixels of 1000x500
    assert (result.width, result.height) == (1000, 500)


def test_ocr_json_round_trips_and_fills_missing_size():
    results = [OcrResult(640, 480, (TextRegion("A", 0.9, quad_from_box((0, 0, 0.5, 0.5))),)), OcrResult(0, 0, ())]
    parsed = parse_text_input(results_to_json(results), 64, 32)
    assert parsed[0] == results[0]
    assert (parsed[1].width, parsed[1].height) == (64, 32)


def test_json_list_of_regions_is_one_image():
    (result,) = parse_text_input(json.dumps([{"text": "東京", "box": [0.1, 0.1, 0.2, 0.2]}, {"text": "B"}]), 10, 10)
    assert result.words == ["東京", "B"]


def test_empty_text_is_an_empty_result():
    assert parse_text_input("  \n", 8, 8) == [OcrResult(8, 8, ())]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"regions": [', "looks like JSON but is not valid"),
        ("WORD @ 1,2,3", "four numbers"),
        ("WORD @ 0.5,0.5,0.1,0.9", "x1 > x0"),
        ('[{"text": 5}]', "string 'text'"),
    ],
)
def test_malformed_input_is_explained(text, message):
    with pytest.raises(TextFormatError, match=re.escape(message)):
        parse_text_input(text, 100, 100)


def test_bad_size():
    with pytest.raises(TextFormatError, match="width and height"):
        parse_text_input("A", 0, 10)
