"""Review Words node: correct the OCR words in the browser; the corrections stay with the workflow.

The node and its two HTTP routes are thin adapters over glyphsr_core.review (matching, validation,
the waiting room). ComfyUI's `server` module is imported only when ComfyUI runs the pack.
"""

from __future__ import annotations

import logging
import os
import uuid

import torch

from ..glyphsr_core.imageops import check_comfy_images, comfy_to_pil
from ..glyphsr_core.review import MAX_BODY_BYTES, Browsers, ReviewDesk, apply_corrections, parse_corrections
from .ocr import TEXT_TYPE
from .runtime import CATEGORY, check_interrupt

logger = logging.getLogger(__name__)

REVIEW_MODES = ("in the browser", "off")
#: seconds the browser has to say the dialog is open; without that answer the run goes on at once
ACK_SECONDS = 3.0
OPEN_EVENT, CLOSED_EVENT = "glyphsr.review", "glyphsr.review.closed"
ROUTE = "/glyphsr/review/{node_id}"
#: where the dialog's script says which client id has it (not under ROUTE: no node is called that)
BROWSER_ROUTE = "/glyphsr/review-browser"

DESK = ReviewDesk()
BROWSERS = Browsers()


def _prompt_server():
    """ComfyUI's PromptServer, or None outside ComfyUI (tests, the CLI)."""
    try:
        import server  # ComfyUI's own module; present only when ComfyUI runs the pack
    except ImportError:
        return None
    return getattr(server.PromptServer, "instance", None)


def _executing():
    """(prompt_id, node_id) of the running node, or (None, None)."""
    try:
        from comfy_execution.utils import get_executing_context
    except ImportError:
        return None, None
    context = get_executing_context()
    return (context.prompt_id, context.node_id) if context is not None else (None, None)


def _save_previews(images: torch.Tensor) -> list[dict]:
    """The images as PNGs in ComfyUI's temp folder, addressed the way /view serves them."""
    import folder_paths

    folder = folder_paths.get_temp_directory()
    os.makedirs(folder, exist_ok=True)
    out = []
    for pil in comfy_to_pil(images, "image"):
        name = f"glyphsr_review_{uuid.uuid4().hex[:12]}.png"
        pil.save(os.path.join(folder, name), compress_level=1)
        out.append({"filename": name, "subfolder": "", "type": "temp"})
    return out


def _remove_previews(previews: list[dict]) -> None:
    """The dialog's pictures are gone with the dialog: a long session does not fill the temp folder."""
    import folder_paths

    for preview in previews:
        try:
            os.remove(os.path.join(folder_paths.get_temp_directory(), preview["filename"]))
        except OSError:
            pass


class ReviewWords:
    DESCRIPTION = (
        "Correct the OCR words by hand. When the graph runs from a browser, a dialog shows the image with the "
        "word boxes: retype a word, delete one, or draw a box and type a new one, then Continue; the graph goes "
        "on with the edited words. The edits are stored in this node ('corrections'), saved with the workflow "
        "and applied to every later OCR result: a change or deletion to the OCR word whose box overlaps its box "
        "(IoU 0.5 or more; none: skipped), a drawn word always (it replaces an OCR word in the same box). "
        "Corrections apply only to an image of the size they were made on. The run waits only when the browser "
        "that queued it has this pack loaded and shows the dialog, and never longer than "
        "'timeout'; API and headless runs, and other users' runs, never wait: they get the stored corrections."
    )
    SEARCH_ALIASES = ["edit ocr", "fix words", "correct text", "review ocr"]

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The image the words were read from (shown in the dialog)."}),
                "text": (TEXT_TYPE, {"tooltip": "The words to review: 'GlyphSR OCR Extract' text."}),
                "review": (list(REVIEW_MODES), {"default": REVIEW_MODES[0], "tooltip": (
                    "'in the browser': show the dialog when the run was queued from a browser with this pack "
                    "(other runs go on at once with the stored corrections). 'off': never ask; apply the stored "
                    "corrections.")}),
                "timeout": ("INT", {"default": 300, "min": 1, "max": 3600, "step": 1, "tooltip": (
                    "Longest wait for the dialog's Continue, in seconds; then the run goes on with the stored "
                    "corrections.")}),
                "corrections": ("STRING", {"default": "", "multiline": True, "tooltip": (
                    "The stored corrections (JSON, written by the dialog). Clear it to drop them.")}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    RETURN_TYPES = (TEXT_TYPE,)
    RETURN_NAMES = ("text",)
    OUTPUT_TOOLTIPS = ("The words with the corrections applied.",)
    FUNCTION = "review_words"
    CATEGORY = CATEGORY

    def review_words(self, image: torch.Tensor, text: list, review: str, timeout: int, corrections: str,
                     unique_id: str | None = None):
        images = check_comfy_images(image, "image")
        if not isinstance(text, list) or not text:
            raise ValueError("'text' must be a GLYPHSR_TEXT with at least one result (connect an OCR node)")
        stored = parse_corrections(corrections)
        shown = [apply_corrections(raw, stored[i] if i < len(stored) else None) for i, raw in enumerate(text)]
        for i, applied in enumerate(shown):
            if i < len(stored):
                logger.info("GlyphSR Review Words: image %d of %d, stored corrections: %s", i + 1, len(text),
                            applied.summary())
        if review == REVIEW_MODES[0]:
            reviewed = self._ask_browser(images, text, shown, float(timeout), unique_id)
            if reviewed is not None:
                return ([apply_corrections(raw, c).result for raw, c in zip(text, reviewed)],)
        return ([applied.result for applied in shown],)

    def _ask_browser(self, images: torch.Tensor, raws: list, shown: list, timeout_s: float, unique_id):
        """The corrections reviewed in the browser that queued this run, or None (no such browser, no answer)."""
        server = _prompt_server()
        prompt_id, node_id = _executing()
        node_id = node_id or unique_id
        client = getattr(server, "client_id", None)
        if server is None or client is None or prompt_id is None or node_id is None:
            return None
        if client not in BROWSERS or client not in getattr(server, "sockets", {}):
            return None  # an API client, or a browser without the dialog (or gone): nobody to ask
        sizes = [(int(images.shape[2]), int(images.shape[1]))] * len(raws)
        DESK.open(node_id, prompt_id, raws, shown, sizes)
        previews = _save_previews(images)
        try:
            server.send_sync(OPEN_EVENT, {
                "node": node_id, "prompt_id": prompt_id, "timeout": timeout_s, "images": previews,
                "sizes": sizes, "words": [[_shown_word(r) for r in s.result.regions] for s in shown],
            }, client)
            outcome = DESK.wait(node_id, ack_s=ACK_SECONDS, timeout_s=timeout_s, check=check_interrupt,
                                alive=lambda: client in getattr(server, "sockets", {}))
        finally:
            DESK.close(node_id)
            server.send_sync(CLOSED_EVENT, {"node": node_id, "prompt_id": prompt_id}, client)
            _remove_previews(previews)
        edits = sum(len(c.edits) for c in outcome.corrections) if outcome.corrections is not None else None
        logger.info("GlyphSR Review Words: %s%s", outcome.reason, "" if edits is None else f" ({edits} edits)")
        return outcome.corrections


def _shown_word(region) -> dict:
    box = region.box
    return {"text": region.text, "box": [round(v, 6) for v in box] if box is not None else None}


def register_routes() -> bool:
    """Add the dialog's two POST routes to ComfyUI's server (False outside ComfyUI)."""
    server = _prompt_server()
    if server is None:
        return False
    from aiohttp import web

    async def _body(request) -> bytes | None:
        """The body, or None as soon as it passes MAX_BODY_BYTES (never read further)."""
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return None
        body = bytearray()
        async for chunk in request.content.iter_chunked(16384):
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return None
        return bytes(body)

    def _answer(handler):
        async def route(request):
            body = await _body(request)
            if body is None:
                return web.json_response({"error": f"the review is larger than {MAX_BODY_BYTES} bytes"},
                                         status=413)
            status, payload = handler(request.match_info["node_id"], body)
            return web.json_response(payload, status=status)
        return route

    async def browser(request):
        body = await _body(request)
        if body is None:
            return web.json_response({"error": f"larger than {MAX_BODY_BYTES} bytes"}, status=413)
        status, payload = BROWSERS.register(body)
        return web.json_response(payload, status=status)

    server.routes.post(BROWSER_ROUTE)(browser)
    server.routes.post(ROUTE + "/open")(_answer(DESK.acknowledge))
    server.routes.post(ROUTE)(_answer(DESK.submit))
    return True


NODE_CLASS_MAPPINGS = {"GlyphSR_ReviewWords": ReviewWords}
NODE_DISPLAY_NAME_MAPPINGS = {"GlyphSR_ReviewWords": "GlyphSR Review Words"}
