"""GlyphSR Review Words in a real ComfyUI server: its routes on ComfyUI's own server, the event on
ComfyUI's websocket, and runs with no browser.

The test client plays the browser: it queues the run with its websocket open, receives
"glyphsr.review", and POSTs to the routes the dialog uses (good and bad documents). The dialog
itself, in ComfyUI's frontend, is tested in test_review_words_frontend.py.
"""

from __future__ import annotations

import copy
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from comfy_client import Graph

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from glyphsr_core.review import ReviewWord, apply_corrections, corrections_from_review, corrections_to_json  # noqa: E402
from glyphsr_core.types import results_from_json  # noqa: E402

W, H = 256, 128


def sign(path: Path) -> None:
    image = Image.new("RGB", (W, H), (235, 232, 220))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=34)
    draw.text((16, 20), "OPEN", font=font, fill=(20, 20, 20))
    draw.text((130, 70), "DAILY", font=font, fill=(20, 20, 20))
    image.save(path)


def post_raw(server, route: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(server.url + route, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post(server, route: str, payload) -> tuple[int, dict]:
    return post_raw(server, route, json.dumps(payload).encode())


def review_graph(server, image_name: str, **review) -> Graph:
    g = Graph(server)
    loaded = g.node("LoadImage", image=image_name)
    ocr = g.node("GlyphSR_OCRExtract", image=loaded.out(0))
    g.node("PreviewAny", node_id="ocr_json", source=ocr.out(1))
    words = g.node("GlyphSR_ReviewWords", node_id="review", image=loaded.out(0), text=ocr.out(0), **review)
    prompts = g.node("GlyphSR_BuildPrompts", text=words.out(0), caption="a shop sign", include_locations=False)
    g.node("PreviewAny", node_id="text_prompt", source=prompts.out(2))
    return g


def text_prompt(result) -> str:
    return result.outputs["text_prompt"]["text"][0]


def test_routes_refuse_everything_but_a_good_review_for_the_waiting_node(comfy_server, unique_prefix):
    sign(comfy_server.input_dir / f"{unique_prefix}.png")
    answers: dict = {}

    def browser(message):
        if message["type"] != "glyphsr.review":
            return
        data = message["data"]
        route, pid = f"/glyphsr/review/{data['node']}", data["prompt_id"]
        shown = [w["text"] for w in data["words"][0]]
        answers["shown"], answers["sizes"] = shown, data["sizes"]
        answers["open"] = post(comfy_server, route + "/open", {"prompt_id": pid})
        answers["unknown node"] = post(comfy_server, "/glyphsr/review/9999", {"prompt_id": pid, "images": []})
        answers["oversized"] = post_raw(comfy_server, route, b'{"prompt_id": "' + b"x" * 70000 + b'"}')
        answers["bad types"] = post(comfy_server, route, {"prompt_id": pid, "images": [{"words": [{"id": "0", "text": 5}]}]})
        answers["a file path"] = post(comfy_server, route, {"prompt_id": pid, "images": [], "path": "/etc/passwd"})
        answers["box outside"] = post(comfy_server, route, {"prompt_id": pid, "images": [
            {"words": [{"text": "X", "box": [0, 0, W + 10, 10]}]}]})
        answers["another prompt"] = post(comfy_server, route, {"prompt_id": "not-this-one", "images": [{"words": []}]})
        words = [{"id": i, "text": "SHUT" if text == "OPEN" else text} for i, text in enumerate(shown)]
        words.append({"text": "BREAD", "box": [20, 80, 110, 120]})
        answers["good"] = post(comfy_server, route, {"prompt_id": pid, "images": [{"words": words}]})
        answers["again"] = post(comfy_server, route, {"prompt_id": pid, "images": [{"words": words}]})

    before = post(comfy_server, "/glyphsr/review/review", {"prompt_id": "x", "images": []})
    # what the dialog's script says on connecting: only such clients are asked to review
    assert post(comfy_server, "/glyphsr/review-browser", {"client_id": 7})[0] == 400
    assert post(comfy_server, "/glyphsr/review-browser", {"client_id": comfy_server.client_id}) == (200, {"ok": True})
    result = comfy_server.queue(review_graph(comfy_server, f"{unique_prefix}.png", timeout=120), on_message=browser)

    assert answers["shown"] == ["OPEN", "DAILY"] and answers["sizes"] == [[W, H]]
    assert before[0] == 404 and "not waiting" in before[1]["error"]
    assert answers["open"] == (200, {"ok": True})
    expected = {"unknown node": (404, "not waiting"), "oversized": (413, "65536"), "bad types": (400, "'text' must be"),
                "a file path": (400, "exactly 'prompt_id' and 'images'"), "box outside": (400, "inside the 256x128"),
                "another prompt": (409, "not the one waiting")}
    for name, (status, reason) in expected.items():
        assert answers[name][0] == status and reason in answers[name][1]["error"], (name, answers[name])
    # a second answer is refused either way: before the node has moved on (409) or after (404)
    again_status, again = answers["again"]
    assert ((again_status == 409 and "already answered" in again["error"])
            or (again_status == 404 and "not waiting" in again["error"])), answers["again"]
    status, payload = answers["good"]
    assert status == 200 and '"SHUT"' in payload["corrections"] and '"BREAD"' in payload["corrections"]
    prompt = text_prompt(result)
    assert '"SHUT"' in prompt and '"DAILY"' in prompt and '"BREAD"' in prompt and "OPEN" not in prompt, prompt
    after = post(comfy_server, "/glyphsr/review/review", {"prompt_id": result.prompt_id, "images": [{"words": []}]})
    assert after[0] == 404 and "not waiting" in after[1]["error"]  # the run is over


def test_an_api_run_with_no_browser_goes_on_with_the_stored_corrections(comfy_server, unique_prefix):
    sign(comfy_server.input_dir / f"{unique_prefix}.png")
    first = comfy_server.queue(review_graph(comfy_server, f"{unique_prefix}.png", review="off"))
    (raw,) = results_from_json(first.outputs["ocr_json"]["text"][0])
    assert raw.words == ["OPEN", "DAILY"]
    shown = apply_corrections(raw, None)
    stored = corrections_to_json([corrections_from_review(raw, shown, [ReviewWord("SHUT", id=0),
                                                                       ReviewWord("DAILY", id=1)])])
    graph = review_graph(comfy_server, f"{unique_prefix}.png", review="in the browser", timeout=3600,
                         corrections=stored)
    # a client with a websocket but no dialog (a script), then one without a websocket: neither may wait the
    # hour (the queue call would raise TimeoutError after 120 s), and neither is even asked
    server = copy.copy(comfy_server)  # a second client of the same server, never announced as a browser
    server.client_id = f"script-{unique_prefix}"
    for websocket in (True, False):
        result = server.queue(graph, timeout=120, websocket=websocket)
        assert '"SHUT"' in text_prompt(result) and "OPEN" not in text_prompt(result)
        graph.nodes["review"]["inputs"]["timeout"] = 3599  # a changed input, so the node runs again
    assert "no review dialog opened" not in comfy_server.log_text()
