"""A ComfyUI server seen over HTTP and its websocket: upload, queue, follow, download.

Two kinds of failure matter to the scheduler: `ServerUnavailable` (refused connection, dropped
websocket, no answer in time: try the input on another server and leave this one aside a while)
and `PromptFailed` (the server ran or validated the prompt and said no: try another server, whose
models or nodes may differ). Every call has a timeout; nothing here imports ComfyUI.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from .wsock import WebSocket, WebSocketClosed

#: subfolder of the server's input folder that uploads go to
UPLOAD_SUBFOLDER = "glyphsr_queue"
_END_EVENTS = ("execution_success", "execution_error", "execution_interrupted")


class ServerUnavailable(ConnectionError):
    """The server did not answer: refused, dropped, or too slow."""


class PromptFailed(RuntimeError):
    """The server refused the prompt or a node failed while it ran; the message says which."""


class ComfyClient:
    """One ComfyUI server at `url` (http://host:port); `timeout` bounds each HTTP call."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ComfyClient({self.url!r})"

    def _call(self, route: str, data: bytes | None = None, headers: dict | None = None) -> bytes:
        request = urllib.request.Request(self.url + route, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return answer.read()
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", errors="replace")
            if exc.code == 400:
                raise PromptFailed(_validation_message(body)) from None
            raise ServerUnavailable(f"{self.url}{route} answered HTTP {exc.code}: {body[:200]}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerUnavailable(f"{self.url} is unreachable ({reason})") from None

    def _json(self, route: str, payload: dict | None = None):
        data = None if payload is None else json.dumps(payload).encode()
        body = self._call(route, data, {"Content-Type": "application/json"} if data else None)
        return json.loads(body) if body.strip() else None

    def load(self) -> int:
        """Prompts running or waiting on the server (GET /queue), all clients together."""
        queue = self._json("/queue")
        return len(queue.get("queue_running", [])) + len(queue.get("queue_pending", []))

    def upload(self, path: Path, name: str) -> str:
        """Upload an image into the server's input/glyphsr_queue/ as `name`; returns the value that a
        LoadImage node's `image` input takes for it."""
        boundary = uuid.uuid4().hex
        fields = [("subfolder", UPLOAD_SUBFOLDER), ("type", "input"), ("overwrite", "true")]
        body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                        for k, v in fields)
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n").encode()
        body += Path(path).read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        answer = json.loads(self._call("/upload/image", body,
                                       {"Content-Type": f"multipart/form-data; boundary={boundary}"}))
        subfolder = answer.get("subfolder") or ""
        return f"{subfolder}/{answer['name']}" if subfolder else answer["name"]

    def connect(self, client_id: str) -> WebSocket:
        """Open /ws for `client_id` and wait for its greeting (before queueing: no event of the prompt is missed)."""
        ws_url = self.url.replace("http://", "ws://", 1) + f"/ws?clientId={urllib.parse.quote(client_id)}"
        try:
            ws = WebSocket(ws_url, timeout=self.timeout)
        except (OSError, ValueError) as exc:
            raise ServerUnavailable(f"{self.url} websocket: {exc}") from None
        try:  # ComfyUI registers the socket, then greets it with "status": from then on no event is lost
            while not (isinstance(raw := ws.recv(), str) and json.loads(raw).get("type") == "status"):
                pass
        except (TimeoutError, WebSocketClosed, ValueError) as exc:
            ws.close()
            raise ServerUnavailable(f"{self.url} websocket sent no status: {exc}") from None
        return ws

    def submit(self, prompt: dict, client_id: str) -> str:
        """POST /prompt; returns the prompt id (PromptFailed with ComfyUI's node errors when invalid)."""
        answer = self._json("/prompt", {"prompt": prompt, "client_id": client_id})
        if answer.get("node_errors"):
            raise PromptFailed(_validation_message(json.dumps(answer)))
        return answer["prompt_id"]

    def wait(self, prompt_id: str, ws: WebSocket, timeout: float) -> dict:
        """Follow the prompt on the websocket until it ends; returns its /history entry. `timeout`
        bounds the wait in the queue, and again the run from ComfyUI's execution_start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ws.settimeout(max(0.1, min(5.0, deadline - time.monotonic())))
            try:
                raw = ws.recv()
            except TimeoutError:
                if self.history(prompt_id) is not None:  # the end was missed or not sent: ask
                    break
                continue
            except WebSocketClosed as exc:
                raise ServerUnavailable(f"{self.url}: {exc} while prompt {prompt_id} ran") from None
            if isinstance(raw, bytes):
                continue  # preview images
            message = json.loads(raw)
            data = message.get("data") or {}
            if data.get("prompt_id") != prompt_id:
                continue
            if message.get("type") == "execution_start":  # the time in the queue does not count against the run
                deadline = time.monotonic() + timeout
            if message.get("type") in _END_EVENTS or (message.get("type") == "executing" and data.get("node") is None):
                break
        else:
            raise ServerUnavailable(f"{self.url}: prompt {prompt_id} did not finish within {timeout:g} s")
        return self._finished_entry(prompt_id)

    def history(self, prompt_id: str) -> dict | None:
        return (self._json(f"/history/{urllib.parse.quote(prompt_id)}") or {}).get(prompt_id)

    def _finished_entry(self, prompt_id: str) -> dict:
        """The history entry, checked for errors (ComfyUI records it just after the end event)."""
        deadline = time.monotonic() + self.timeout
        while (entry := self.history(prompt_id)) is None:
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"{self.url}: prompt {prompt_id} ended but never reached /history")
            time.sleep(0.05)
        status = entry.get("status") or {}
        for kind, data in status.get("messages", []):
            if kind == "execution_error":
                raise PromptFailed(f"node {data.get('node_id')} ({data.get('node_type')}) failed: "
                                   f"{data.get('exception_type')}: {data.get('exception_message', '').strip()}")
            if kind == "execution_interrupted":
                raise PromptFailed(f"prompt was interrupted at node {data.get('node_id')} ({data.get('node_type')})")
        if status.get("status_str") == "error":
            raise PromptFailed(f"prompt ended with status {status.get('status_str')}")
        return entry

    def download(self, item: dict, dest: Path) -> None:
        """GET /view of one output item into `dest`, through a temporary name (never half a file)."""
        query = urllib.parse.urlencode({"filename": item["filename"], "subfolder": item.get("subfolder", ""),
                                        "type": item.get("type", "output")})
        data = self._call(f"/view?{query}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            part.write_bytes(data)
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)

    def cancel(self, prompt_id: str) -> None:
        """Best effort: drop the prompt from the queue, or stop it if it is the one running."""
        for route, payload in (("/queue", {"delete": [prompt_id]}), ("/interrupt", {"prompt_id": prompt_id})):
            try:
                self._json(route, payload)
            except (ServerUnavailable, PromptFailed, socket.timeout, ValueError):
                pass


def _validation_message(body: str) -> str:
    """ComfyUI's 400 answer to /prompt, as one line: the error and each node's problems."""
    try:
        answer = json.loads(body)
    except ValueError:
        return f"prompt refused: {body[:300]}"
    error = answer.get("error") or {}
    parts = [error.get("message", "prompt refused") + (f": {error['details']}" if error.get("details") else "")]
    for node_id, info in (answer.get("node_errors") or {}).items():
        details = "; ".join(f"{e.get('message', '')} {e.get('details', '')}".strip() for e in info.get("errors", []))
        parts.append(f"node {node_id} ({info.get('class_type', '?')}): {details}")
    return " | ".join(parts)
