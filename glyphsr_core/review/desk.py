"""Where a running review node waits for its browser, and where the browser's answers arrive.

The node thread opens a review, asks the browser to show it, then `wait`s: first for the browser to
say the dialog is open (within `ack_s`; no answer means no browser with the review dialog, and the
run goes on at once), then for the reviewed words (at most `timeout_s` in all). The HTTP handlers
call `acknowledge` and `submit` from the server's thread; each returns (HTTP status, JSON body), a
4xx with a reason for anything but a valid answer to a node that is waiting now.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

from ..types import OcrResult
from .corrections import Applied, ImageCorrections, corrections_from_review, corrections_to_json
from .document import MAX_ID_CHARS, ReviewDocumentError, parse_body, validate_review


@dataclass
class _Pending:
    prompt_id: str
    raws: Sequence[OcrResult]
    shown: Sequence[Applied]
    sizes: Sequence[tuple[int, int]]
    seen: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    answer: list[ImageCorrections] | None = None


class WaitOutcome(NamedTuple):
    """The reviewed corrections (None: nobody answered) and why the wait ended, for the log."""

    corrections: list[ImageCorrections] | None
    reason: str


def _error(status: int, reason: str) -> tuple[int, dict]:
    return status, {"error": reason}


class ReviewDesk:
    """Reviews waiting for an answer, by node id (one per node: a node runs once at a time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}

    def open(self, node_id: str, prompt_id: str, raws: Sequence[OcrResult], shown: Sequence[Applied],
             sizes: Sequence[tuple[int, int]]) -> None:
        """Start accepting answers for `node_id` of `prompt_id` (the words `shown` over images of `sizes`)."""
        with self._lock:
            self._pending[node_id] = _Pending(prompt_id, raws, shown, sizes)

    def close(self, node_id: str) -> None:
        """Stop accepting answers: later ones get 404."""
        with self._lock:
            self._pending.pop(node_id, None)

    def waiting(self, node_id: str) -> bool:
        with self._lock:
            return node_id in self._pending

    def _find(self, node_id: str) -> _Pending | None:
        with self._lock:
            return self._pending.get(node_id)

    def acknowledge(self, node_id: str, body: bytes) -> tuple[int, dict]:
        """The browser shows the dialog: the node now waits up to its timeout."""
        pending = self._find(node_id)
        if pending is None:
            return _error(404, f"node {node_id[:MAX_ID_CHARS]!r} is not waiting for a review")
        try:
            data = parse_body(body)
        except ReviewDocumentError as exc:
            return _error(exc.status, str(exc))
        if not isinstance(data, dict) or data.get("prompt_id") != pending.prompt_id:
            return _error(409, "this review belongs to another prompt")
        pending.seen.set()
        return 200, {"ok": True}

    def submit(self, node_id: str, body: bytes) -> tuple[int, dict]:
        """The reviewed words: validated, turned into corrections, handed to the waiting node."""
        pending = self._find(node_id)
        if pending is None:
            return _error(404, f"node {node_id[:MAX_ID_CHARS]!r} is not waiting for a review")
        try:
            data = parse_body(body)
            words = validate_review(data, pending.prompt_id, pending.sizes,
                                    [len(s.result.regions) for s in pending.shown])
        except ReviewDocumentError as exc:
            return _error(exc.status, str(exc))
        answer = [corrections_from_review(raw, shown, image_words)
                  for raw, shown, image_words in zip(pending.raws, pending.shown, words)]
        with self._lock:
            if pending.done.is_set() or self._pending.get(node_id) is not pending:
                return _error(409, "this review was already answered")
            pending.answer = answer
            pending.seen.set()
            pending.done.set()
        return 200, {"ok": True, "corrections": corrections_to_json(answer)}

    def wait(self, node_id: str, *, ack_s: float, timeout_s: float, check: Callable[[], Any],
             alive: Callable[[], bool], poll_s: float = 0.1,
             clock: Callable[[], float] = time.monotonic) -> WaitOutcome:
        """Block until answered, or no dialog opened within `ack_s`, or `alive()` turns False, or
        `timeout_s` passed. `check` runs every `poll_s` (the node raises there on Cancel)."""
        pending = self._find(node_id)
        if pending is None:
            return WaitOutcome(None, "no review was opened")
        start = clock()
        while True:
            if pending.done.wait(poll_s):
                return WaitOutcome(pending.answer, "reviewed in the browser")
            check()
            elapsed = clock() - start
            if not pending.seen.is_set() and elapsed >= min(ack_s, timeout_s):
                return WaitOutcome(None, f"no review dialog opened within {min(ack_s, timeout_s):g} s")
            if not alive():
                return WaitOutcome(None, "the browser that queued the run disconnected")
            if elapsed >= timeout_s:
                return WaitOutcome(None, f"no answer within the {timeout_s:g} s timeout")


class Browsers:
    """Client ids of the browsers that loaded the review dialog (each says so when it connects).

    Only those are asked to review: a script that queues with a client id and a websocket but has no
    dialog never makes a run wait. Bounded: past `limit` ids the oldest is forgotten.
    """

    def __init__(self, limit: int = 256) -> None:
        self._lock = threading.Lock()
        self._ids: dict[str, None] = {}
        self.limit = limit

    def __contains__(self, client_id: object) -> bool:
        with self._lock:
            return client_id in self._ids

    def register(self, body: bytes) -> tuple[int, dict]:
        """`{"client_id": "..."}` from the dialog's script: (200, ok) or a 4xx with the reason."""
        try:
            data = parse_body(body)
        except ReviewDocumentError as exc:
            return _error(exc.status, str(exc))
        if not isinstance(data, dict) or set(data) != {"client_id"}:
            return _error(400, "expected exactly {\"client_id\": \"...\"}")
        client_id = data["client_id"]
        if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_ID_CHARS or not client_id.isprintable():
            return _error(400, f"'client_id' must be a printable string of 1 to {MAX_ID_CHARS} characters")
        with self._lock:
            self._ids.pop(client_id, None)
            self._ids[client_id] = None
            while len(self._ids) > self.limit:
                self._ids.pop(next(iter(self._ids)))
        return 200, {"ok": True}
