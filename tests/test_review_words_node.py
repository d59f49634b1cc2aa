"""GlyphSR Review Words against the ComfyUI stand-in: stored corrections, no browser, a browser that
answers, one that does not, Cancel. ComfyUI's server is played by a small fake here (the real one is
in tests/integration/test_review_words.py)."""

from __future__ import annotations

import json
import sys
import threading
import types

import pytest
import torch

import comfy.model_management as mm
from glyphsr_core.review import ReviewWord, apply_corrections, corrections_from_review, corrections_to_json
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box

W, H = 64, 32
SIGN = OcrResult(W, H, (TextRegion("0PEN", 0.9, quad_from_box((0.1, 0.1, 0.4, 0.4))),
                        TextRegion("DAILY", 0.9, quad_from_box((0.5, 0.1, 0.9, 0.4)))))
IMAGE = torch.rand(1, H, W, 3)
STORED = corrections_to_json([corrections_from_review(SIGN, apply_corrections(SIGN, None),
                                                      [ReviewWord("OPEN", id=0), ReviewWord("DAILY", id=1)])])


@pytest.fixture
def module(pack):
    return pack.nodes.review_words


@pytest.fixture
def node(module):
    return module.ReviewWords()


class FakeServer:
    """What the node uses of ComfyUI's PromptServer: the queuing client's id, its sockets, send_sync."""

    def __init__(self, client_id: str | None = "browser-1", on_send=None, has_dialog: bool = True):
        self.client_id, self.has_dialog = client_id, has_dialog
        self.sockets = {client_id: object()} if client_id else {}
        self.sent: list[tuple[str, dict, str]] = []
        self.on_send = on_send

    def send_sync(self, event, data, sid=None):
        self.sent.append((event, data, sid))
        if self.on_send is not None:
            self.on_send(event, data)


@pytest.fixture
def comfyui(module, monkeypatch, tmp_path):
    """Install a fake `server` module and an executing context (prompt "p1", node "12")."""

    def install(server: FakeServer) -> FakeServer:
        monkeypatch.setitem(sys.modules, "server", types.SimpleNamespace(PromptServer=types.SimpleNamespace(
            instance=server)))
        context = types.SimpleNamespace(prompt_id="p1", node_id="12")
        utils = types.SimpleNamespace(get_executing_context=lambda: context)
        monkeypatch.setitem(sys.modules, "comfy_execution", types.SimpleNamespace(utils=utils))
        monkeypatch.setitem(sys.modules, "comfy_execution.utils", utils)
        import folder_paths

        monkeypatch.setattr(folder_paths, "get_temp_directory", lambda: str(tmp_path))
        if server.client_id is not None and server.has_dialog:  # what the dialog's script posts on connecting
            assert module.BROWSERS.register(json.dumps({"client_id": server.client_id}).encode())[0] == 200
        return server

    return install


def run(node, corrections: str = "", review: str = "in the browser", timeout: int = 300):
    (text,) = node.review_words(IMAGE, [SIGN], review, timeout, corrections, unique_id="12")
    return text[0].words


def test_registered_with_its_inputs_and_defaults_that_never_block(pack, module):
    assert pack.NODE_CLASS_MAPPINGS["GlyphSR_ReviewWords"] is module.ReviewWords
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["GlyphSR_ReviewWords"] == "GlyphSR Review Words"
    assert pack.WEB_DIRECTORY == "./web"
    inputs = module.ReviewWords.INPUT_TYPES()
    assert list(inputs["required"]) == ["image", "text", "review", "timeout", "corrections"]
    assert inputs["required"]["review"][1]["default"] == "in the browser"
    assert inputs["required"]["timeout"][1]["default"] == 300 and inputs["required"]["corrections"][1]["default"] == ""
    assert module.ReviewWords.RETURN_TYPES == ("GLYPHSR_TEXT",)
    assert "never wait" in module.ReviewWords.DESCRIPTION


def test_without_comfyuis_server_the_stored_corrections_are_applied_at_once(node):
    assert "server" not in sys.modules
    assert run(node) == ["0PEN", "DAILY"]
    assert run(node, STORED) == ["OPEN", "DAILY"]
    assert run(node, STORED, review="off") == ["OPEN", "DAILY"]


def test_a_broken_corrections_value_says_how_to_recover(node):
    with pytest.raises(ValueError, match="clear it to start again"):
        run(node, "{oops")


def test_an_api_run_without_a_client_never_asks(node, comfyui):
    server = comfyui(FakeServer(client_id=None))
    assert run(node, STORED) == ["OPEN", "DAILY"]
    assert server.sent == []


def test_a_client_that_never_said_it_has_the_dialog_is_never_asked(node, module, comfyui, tmp_path):
    """A script queuing with a client id and an open websocket (e.g. `queue`) never waits, and no
    picture is left in the temp folder."""
    server = comfyui(FakeServer(client_id="script-7", has_dialog=False))
    assert run(node, STORED, timeout=300) == ["OPEN", "DAILY"]
    assert server.sent == [] and list(tmp_path.iterdir()) == []


def test_a_browser_whose_dialog_does_not_open_gets_the_stored_corrections_after_the_acknowledge_window(
        node, module, comfyui, monkeypatch, tmp_path):
    monkeypatch.setattr(module, "ACK_SECONDS", 0.2)
    server = comfyui(FakeServer())
    assert run(node, STORED, timeout=300) == ["OPEN", "DAILY"]
    assert [event for event, _, _ in server.sent] == ["glyphsr.review", "glyphsr.review.closed"]
    opened = server.sent[0][1]
    assert server.sent[0][2] == "browser-1" and opened["node"] == "12" and opened["prompt_id"] == "p1"
    assert [w["text"] for w in opened["words"][0]] == ["OPEN", "DAILY"]  # shown with the stored corrections
    assert [list(size) for size in opened["sizes"]] == [[W, H]]
    assert not module.DESK.waiting("12")
    assert list(tmp_path.iterdir()) == []  # the dialog's picture went with the dialog


def test_the_browser_list_takes_only_a_client_id_and_stays_bounded():
    from glyphsr_core.review import Browsers

    browsers = Browsers(limit=2)
    for body in (b"[]", b'{"client_id": ""}', b'{"client_id": 5}', b'{"client_id": "a", "x": 1}', b"\xff",
                 b'{"client_id": "' + b"a" * 101 + b'"}', b'{"client_id": "a\\nb"}'):
        status, answer = browsers.register(body)
        assert status == 400 and answer["error"], body
    for name in ("one", "two", "three"):
        assert browsers.register(json.dumps({"client_id": name}).encode()) == (200, {"ok": True})
    assert "one" not in browsers and "two" in browsers and "three" in browsers


def browser(module, answer: dict | None, replies: list):
    """A fake browser: on the open event, say the dialog is open, then (if `answer`) send the review."""

    def on_send(event, data):
        if event != "glyphsr.review":
            return

        def act():
            replies.append(module.DESK.acknowledge(data["node"], json.dumps({"prompt_id": data["prompt_id"]}).encode()))
            if answer is not None:
                replies.append(module.DESK.submit(data["node"], json.dumps(answer).encode()))

        threading.Thread(target=act).start()

    return on_send


def test_the_browsers_review_is_the_output_and_its_corrections_come_back_to_store(node, module, comfyui):
    replies: list = []
    answer = {"prompt_id": "p1", "images": [{"words": [{"id": 1, "text": "DAILY"},
                                                       {"text": "BREAD", "box": [6, 20, 40, 30]}]}]}
    comfyui(FakeServer(on_send=browser(module, answer, replies)))
    assert run(node, STORED) == ["DAILY", "BREAD"]
    (ack_status, _), (status, payload) = replies
    assert ack_status == 200 and status == 200
    stored = payload["corrections"]
    assert run(node, stored, review="off") == ["DAILY", "BREAD"]  # what the next run gets, unattended


def test_an_open_dialog_nobody_answers_ends_at_the_timeout(node, module, comfyui):
    replies: list = []
    server = comfyui(FakeServer(on_send=browser(module, None, replies)))
    assert run(node, STORED, timeout=1) == ["OPEN", "DAILY"]
    assert replies == [(200, {"ok": True})] and server.sent[-1][0] == "glyphsr.review.closed"


def test_cancel_stops_the_wait(node, module, comfyui):
    replies: list = []

    def on_send(event, data):
        browser(module, None, replies)(event, data)
        if event == "glyphsr.review":
            mm.interrupt_current_processing(True)

    comfyui(FakeServer(on_send=on_send))
    with pytest.raises(mm.InterruptProcessingException):
        run(node, STORED, timeout=300)
    assert not module.DESK.waiting("12")
