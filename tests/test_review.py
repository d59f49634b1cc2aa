"""Word corrections (glyphsr_core.review): applying them, matching them to a new OCR result, working
them out from a review, checking the review document, and the waiting room the node waits in."""

from __future__ import annotations

import json
import threading

import pytest

from glyphsr_core.review import (MAX_BODY_BYTES, MAX_TEXT_CHARS, MAX_WORDS, ReviewDesk, ReviewDocumentError,
                                 ReviewWord, apply_corrections, corrections_from_review, corrections_to_json,
                                 parse_corrections, validate_review)
from glyphsr_core.review.corrections import Edit, ImageCorrections
from glyphsr_core.review.document import parse_body
from glyphsr_core.types import OcrResult, TextFormatError, TextRegion, quad_from_box

W, H = 400, 200


def region(text: str, box, confidence: float = 0.9) -> TextRegion:
    return TextRegion(text, confidence, quad_from_box(box))


def ocr(*words) -> OcrResult:
    return OcrResult(W, H, tuple(region(t, b) for t, b in words))


#: a shop sign read with one mistake ("0PEN") and one stray token ("~~")
SIGN = ocr(("0PEN", (0.1, 0.1, 0.3, 0.2)), ("DAILY", (0.4, 0.1, 0.6, 0.2)), ("~~", (0.7, 0.1, 0.8, 0.2)),
           ("BAKERY", (0.1, 0.5, 0.5, 0.7)))


def review(raw: OcrResult, words, stored: ImageCorrections | None = None) -> ImageCorrections:
    return corrections_from_review(raw, apply_corrections(raw, stored), words)


# ------------------------------------------------------------------ applying and matching


def test_change_delete_and_add_from_a_review_give_the_reviewed_words():
    words = [ReviewWord("OPEN", id=0), ReviewWord("DAILY", id=1), ReviewWord("BAKERY", id=3),
             ReviewWord("BREAD", box=(0.6, 0.5, 0.9, 0.7))]
    corrections = review(SIGN, words)
    assert sorted(e.op for e in corrections.edits) == ["add", "change", "delete"]
    applied = apply_corrections(SIGN, corrections)
    assert applied.result.words == ["OPEN", "DAILY", "BAKERY", "BREAD"]
    assert applied.origins == (0, 1, 3, None)
    assert (applied.changed, applied.deleted, applied.added, applied.skipped) == (1, 1, 1, 0)
    assert applied.result.regions[0].quad == SIGN.regions[0].quad  # a changed word keeps its box
    assert applied.result.regions[0].confidence == 1.0  # a person confirmed it


def test_a_drawn_word_takes_its_place_in_reading_order():
    corrections = review(SIGN, [ReviewWord("FRESH", box=(0.0, 0.45, 0.08, 0.75)), ReviewWord("0PEN", id=0)])
    assert apply_corrections(SIGN, corrections).result.words == ["0PEN", "FRESH"]
    corrections = review(SIGN, [ReviewWord("0PEN", id=0), ReviewWord("BAKERY", id=3),
                                ReviewWord("OF", box=(0.32, 0.1, 0.38, 0.2))])
    assert apply_corrections(SIGN, corrections).result.words == ["0PEN", "OF", "BAKERY"]


def test_stored_corrections_follow_the_words_to_a_new_ocr_result():
    corrections = review(SIGN, [ReviewWord("OPEN", id=0), ReviewWord("DAILY", id=1), ReviewWord("BAKERY", id=3),
                                ReviewWord("BREAD", box=(0.6, 0.5, 0.9, 0.7))])
    # the next run reads the boxes a little shifted, in another order, and misses "~~"
    again = ocr(("DAILY", (0.41, 0.11, 0.61, 0.21)), ("0PEN", (0.11, 0.1, 0.31, 0.2)),
                ("BAKERY", (0.1, 0.52, 0.5, 0.72)))
    applied = apply_corrections(again, corrections)
    assert applied.result.words == ["DAILY", "OPEN", "BAKERY", "BREAD"]
    assert applied.skipped == 1  # the deletion of "~~": nothing in its box now


def test_a_correction_needs_half_the_box_to_overlap_and_an_added_word_is_not_doubled():
    corrections = ImageCorrections(W, H, (Edit("change", (0.1, 0.1, 0.3, 0.2), "OPEN", "0PEN"),))
    moved = ocr(("0PEN", (0.2, 0.1, 0.4, 0.2)))  # IoU 1/3 with the stored box
    assert apply_corrections(moved, corrections).result.words == ["0PEN"]
    added = ImageCorrections(W, H, (Edit("add", (0.1, 0.1, 0.3, 0.2), "OPEN"),))
    found_now = ocr(("0PEN", (0.1, 0.1, 0.3, 0.2)))
    assert apply_corrections(found_now, added).result.words == ["OPEN"]


def test_corrections_of_another_image_size_are_not_applied():
    corrections = review(SIGN, [ReviewWord("OPEN", id=0)])
    other = OcrResult(W * 2, H, SIGN.regions)
    applied = apply_corrections(other, corrections)
    assert applied.result == other and applied.skipped == len(corrections.edits)


def test_a_second_review_starts_from_the_stored_corrections_and_keeps_the_raw_words_as_base():
    first = review(SIGN, [ReviewWord("OPEN", id=0), ReviewWord("DAILY", id=1),
                          ReviewWord("BREAD", box=(0.6, 0.5, 0.9, 0.7))])
    shown = apply_corrections(SIGN, first)
    assert shown.result.words == ["OPEN", "DAILY", "BREAD"]
    # the person now deletes the drawn word and puts BAKERY back (shown ids: 0 OPEN, 1 DAILY, 2 BREAD)
    second = corrections_from_review(SIGN, shown, [ReviewWord("OPEN", id=0), ReviewWord("FRESH", id=2)])
    assert apply_corrections(SIGN, second).result.words == ["OPEN", "FRESH"]
    ops = sorted((e.op, e.text or e.was) for e in second.edits)
    assert ops == [("add", "FRESH"), ("change", "OPEN"), ("delete", "BAKERY"), ("delete", "DAILY"), ("delete", "~~")]


def test_corrections_round_trip_through_the_widget_value():
    corrections = review(SIGN, [ReviewWord("OPÉN", id=0), ReviewWord("BREAD", box=(0.6, 0.5, 0.9, 0.7))])
    text = corrections_to_json([corrections])
    assert "OPÉN" in text  # kept readable, not escaped
    assert parse_corrections(text) == [corrections]
    assert corrections_to_json([review(SIGN, [ReviewWord(r.text, id=i) for i, r in enumerate(SIGN.regions)])]) == ""
    assert parse_corrections("") == [] and parse_corrections("  \n") == []


@pytest.mark.parametrize("value, message", [
    ("{not json", "not valid JSON"),
    ('{"edits": []}', "'images' list"),
    ('{"images": [{"size": [400], "edits": []}]}', "'size' \\[width, height\\]"),
    ('{"images": [{"size": [400, 200], "edits": [{"op": "move", "box": [0, 0, 1, 1]}]}]}', "'op' one of"),
    ('{"images": [{"size": [400, 200], "edits": [{"op": "add", "box": [0, 0, 1], "text": "A"}]}]}', "'box' as 4"),
    ('{"images": [{"size": [400, 200], "edits": [{"op": "add", "box": [0, 0, 1, 1], "text": " "}]}]}', "non-empty"),
])
def test_a_broken_corrections_value_is_an_input_error_that_says_what_to_do(value, message):
    with pytest.raises(TextFormatError, match=message):
        parse_corrections(value)


# ------------------------------------------------------------------ the review document

SIZES, SHOWN = [(W, H)], [4]


def doc(*words, prompt_id: str = "p1") -> dict:
    return {"prompt_id": prompt_id, "images": [{"words": list(words)}]}


def test_a_good_document_gives_words_with_boxes_in_fractions():
    words = validate_review(doc({"id": 0, "text": " OPEN "}, {"text": "BREAD", "box": [240, 100, 360, 140]}), "p1",
                            SIZES, SHOWN)
    assert words == [[ReviewWord("OPEN", id=0), ReviewWord("BREAD", box=(0.6, 0.5, 0.9, 0.7))]]
    assert validate_review(doc(), "p1", SIZES, SHOWN) == [[]]  # every word deleted


@pytest.mark.parametrize("data, message", [
    ([], "exactly 'prompt_id' and 'images'"),
    ({**doc(), "path": "/etc/passwd"}, "exactly 'prompt_id' and 'images'"),
    (doc(prompt_id="p2"), "not the one waiting"),
    ({"prompt_id": "p1", "images": []}, "a list of 1"),
    ({"prompt_id": "p1", "images": [{"words": [], "image": "x.png"}]}, "only a 'words' list"),
    (doc({"id": 0}), "'text' must be a string"),
    (doc({"id": 0, "text": 5}), "'text' must be a string"),
    (doc({"id": 0, "text": "A" * (MAX_TEXT_CHARS + 1)}), "1 to 120 characters"),
    (doc({"id": 0, "text": "A\x00B"}), "control character"),
    (doc({"id": 4, "text": "A"}), "0 to 3"),
    (doc({"id": True, "text": "A"}), "number of a shown word"),
    (doc({"id": 0, "text": "A"}, {"id": 0, "text": "B"}), "twice"),
    (doc({"text": "A"}), "either 'id'"),
    (doc({"id": 0, "text": "A", "box": [0, 0, 1, 1]}), "either 'id'"),
    (doc({"text": "A", "box": [0, 0, 500, 10]}), "inside the 400x200 image"),
    (doc({"text": "A", "box": [10, 10, 5, 20]}), "inside the 400x200 image"),
    (doc({"text": "A", "box": ["0", 0, 5, 20]}), "4 finite numbers"),
    (doc({"text": "A", "box": [0, 0, float("nan"), 20]}), "4 finite numbers"),
    (doc({"text": "A", "file": "x", "id": 0}), "only box, id, text"),
    (doc(*[{"text": "A", "box": [0, 0, 1, 1]}] * (MAX_WORDS + 1)), "at most 400"),
])
def test_a_bad_document_is_refused_with_the_reason(data, message):
    with pytest.raises(ReviewDocumentError, match=message):
        validate_review(data, "p1", SIZES, SHOWN)


def test_the_body_is_bounded_and_must_be_json():
    with pytest.raises(ReviewDocumentError, match="at most 65536") as error:
        parse_body(b" " * (MAX_BODY_BYTES + 1))
    assert error.value.status == 413
    with pytest.raises(ReviewDocumentError, match="UTF-8 JSON"):
        parse_body(b"\xff{")
    assert parse_body(json.dumps(doc()).encode()) == doc()


# ------------------------------------------------------------------ the waiting room


def body(data) -> bytes:
    return json.dumps(data).encode()


class Clock:
    """A clock that moves on 1 s at each reading, so a wait's timing is exact and instant."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_nobody_answering_ends_the_wait_after_the_acknowledge_window():
    desk = ReviewDesk()
    desk.open("7", "p1", [SIGN], [apply_corrections(SIGN, None)], SIZES)
    clock, checks = Clock(), []
    outcome = desk.wait("7", ack_s=3, timeout_s=300, check=lambda: checks.append(1), alive=lambda: True,
                        poll_s=0, clock=clock)
    assert outcome.corrections is None and "no review dialog opened within 3 s" in outcome.reason
    assert clock.now < 10 and checks


def test_an_open_dialog_is_waited_for_until_the_timeout_or_a_disconnect():
    desk = ReviewDesk()
    desk.open("7", "p1", [SIGN], [apply_corrections(SIGN, None)], SIZES)
    assert desk.acknowledge("7", body({"prompt_id": "p1"})) == (200, {"ok": True})
    clock = Clock()
    outcome = desk.wait("7", ack_s=3, timeout_s=30, check=lambda: None, alive=lambda: True, poll_s=0, clock=clock)
    assert outcome.corrections is None and "30 s timeout" in outcome.reason and 30 <= clock.now <= 32
    outcome = desk.wait("7", ack_s=3, timeout_s=30, check=lambda: None, alive=lambda: False, poll_s=0)
    assert "disconnected" in outcome.reason


def test_cancel_raises_out_of_the_wait():
    desk = ReviewDesk()
    desk.open("7", "p1", [SIGN], [apply_corrections(SIGN, None)], SIZES)

    def cancelled():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        desk.wait("7", ack_s=3, timeout_s=30, check=cancelled, alive=lambda: True, poll_s=0)


def test_a_submitted_review_reaches_the_waiting_node_once():
    desk = ReviewDesk()
    desk.open("7", "p1", [SIGN], [apply_corrections(SIGN, None)], SIZES)
    answers = []
    answer = doc({"id": 0, "text": "OPEN"}, {"id": 1, "text": "DAILY"}, {"id": 3, "text": "BAKERY"})
    sender = threading.Timer(0.05, lambda: answers.append(desk.submit("7", body(answer))))
    sender.start()
    outcome = desk.wait("7", ack_s=5, timeout_s=30, check=lambda: None, alive=lambda: True, poll_s=0.01)
    sender.join()
    status, payload = answers[0]
    assert status == 200 and parse_corrections(payload["corrections"]) == outcome.corrections
    assert apply_corrections(SIGN, outcome.corrections[0]).result.words == ["OPEN", "DAILY", "BAKERY"]
    assert desk.submit("7", body(answer)) == (409, {"error": "this review was already answered"})
    desk.close("7")
    status, payload = desk.submit("7", body(answer))
    assert status == 404 and "not waiting" in payload["error"]


@pytest.mark.parametrize("data, status, reason", [
    (b"[", 400, "UTF-8 JSON"),
    (b" " * (MAX_BODY_BYTES + 1), 413, "at most"),
    (body(doc(prompt_id="old")), 409, "not the one waiting"),
    (body(doc({"id": 9, "text": "A"})), 400, "0 to 3"),
])
def test_a_bad_submission_is_refused_and_the_node_keeps_waiting(data, status, reason):
    desk = ReviewDesk()
    desk.open("7", "p1", [SIGN], [apply_corrections(SIGN, None)], SIZES)
    got_status, payload = desk.submit("7", data)
    assert got_status == status and reason in payload["error"]
    assert desk.waiting("7") and desk.submit("7", body(doc()))[0] == 200
    assert desk.acknowledge("8", body({"prompt_id": "p1"}))[0] == 404
