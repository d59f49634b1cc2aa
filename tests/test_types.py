import json
import re

import pytest

from glyphsr_core.types import OcrResult, TextFormatError, TextRegion, quad_from_box, results_from_json, results_to_json


def _result() -> OcrResult:
    return OcrResult(
        640,
        480,
        (
            TextRegion("OPEN", 0.98, ((0.1, 0.1), (0.3, 0.1), (0.3, 0.2), (0.1, 0.2))),
            TextRegion("Café «24/7» \"quoted\"", 0.5, ((0.5, 0.5), (0.9, 0.55), (0.88, 0.7), (0.48, 0.65))),
            TextRegion("東京", 0.7, None),
        ),
    )


def test_json_round_trip_keeps_every_field():
    results = [_result(), OcrResult(32, 16, ())]
    text = results_to_json(results)
    assert results_from_json(text) == results
    assert "東京" in text  # readable, not \u-escaped


def test_box_is_the_bounds_of_the_quad():
    region = _result().regions[1]
    assert region.box == pytest.approx((0.48, 0.5, 0.9, 0.7))
    assert region.center == pytest.approx((0.69, 0.6))
    assert region.pixel_quad(100, 10)[0] == pytest.approx((50.0, 5.0))


def test_region_from_box_only():
    region = TextRegion.from_dict({"text": "SALE", "box": [0.1, 0.2, 0.3, 0.4]})
    assert region.quad == quad_from_box((0.1, 0.2, 0.3, 0.4))
    assert region.confidence == 1.0


def test_single_object_reads_as_batch_of_one():
    one = json.dumps(_result().to_dict())
    assert results_from_json(one) == [_result()]


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{not json", "not valid JSON"),
        ("42", "expected a JSON object"),
        ('{"regions": [{"confidence": 1}]}', "string 'text'"),
        ('{"regions": [{"text": "A", "quad": [[0, 0], [1, 0]]}]}', "4 [x, y] points"),
        ('{"regions": [{"text": "A", "box": [0, 0, "x", 1]}]}', "must be a number"),
        ('{"regions": "A"}', "'regions' must be a list"),
    ],
)
def test_malformed_json_names_the_problem(bad, message):
    with pytest.raises(TextFormatError, match=re.escape(message)):
        results_from_json(bad)


def test_filtered_drops_low_confidence():
    assert _result().filtered(0.6).words == ["OPEN", "東京"]
