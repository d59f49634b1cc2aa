"""A fake ComfyUI server for the `queue` command's tests: the HTTP routes and websocket events that
the command uses, with switches for the failures it must survive.

It runs prompts one at a time like ComfyUI: each SaveImage node saves the LoadImage input scaled x2
(`images_per_save` copies) into its output folder, each PreviewImage a temp image. Switches:
`foreign_load` (prompts of other clients reported by GET /queue), `fail` (every prompt ends with an
execution_error), `reject` (POST /prompt answers 400 with node errors, as for a missing model), `die_on_prompt` (the server vanishes when the Nth prompt starts: websockets dropped,
new connections refused), `delay` (seconds a prompt runs). `ran` lists the input names it ran.
Every websocket gets a ping and two binary previews (16- and 64-bit lengths) first, and the end event
split over two frames (a continuation).
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image


def _frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


class FakeComfy:
    def __init__(self, root: Path, name: str = "fake", *, foreign_load: int = 0, fail: bool = False, reject: bool = False,
                 die_on_prompt: int | None = None, delay: float = 0.0, images_per_save: int = 1):
        self.root, self.name = Path(root), name
        self.input_dir, self.output_dir, self.temp_dir = (self.root / d for d in ("input", "output", "temp"))
        for d in (self.input_dir, self.output_dir, self.temp_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.foreign_load, self.fail, self.reject, self.die_on_prompt = foreign_load, fail, reject, die_on_prompt
        self.delay, self.images_per_save = delay, images_per_save
        self.ran: list[str] = []
        self.history: dict[str, dict] = {}
        self.pending: list[tuple[str, dict, str]] = []
        self.running: list[str] = []
        self.sockets: dict[str, socket.socket] = {}
        self.lock = threading.Condition()
        self.alive = True
        self.started = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        threading.Thread(target=self._executor, daemon=True).start()

    # ---- prompt execution ------------------------------------------------------------------

    def _send(self, client_id: str, message: dict, split: bool = False) -> None:
        sock = self.sockets.get(client_id)
        if sock is None:
            return
        data = json.dumps(message).encode()
        frames = (_frame(1, data[:5], fin=False) + _frame(0, data[5:])) if split else _frame(1, data)
        try:
            sock.sendall(frames)
        except OSError:
            pass

    def _executor(self) -> None:
        while self.alive:
            with self.lock:
                while self.alive and not self.pending:
                    self.lock.wait(0.1)
                if not self.alive:
                    return
                prompt_id, prompt, client_id = self.pending.pop(0)
                self.running.append(prompt_id)
            self.started += 1
            if self.die_on_prompt is not None and self.started >= self.die_on_prompt:
                self.stop()
                return
            self._run(prompt_id, prompt, client_id)
            with self.lock:
                self.running.remove(prompt_id)

    def _run(self, prompt_id: str, prompt: dict, client_id: str) -> None:
        image_name = next(n["inputs"]["image"] for n in prompt.values() if n["class_type"] == "LoadImage")
        self.ran.append(image_name)
        self._send(client_id, {"type": "execution_start", "data": {"prompt_id": prompt_id}})
        time.sleep(self.delay)
        outputs, messages = {}, [["execution_start", {"prompt_id": prompt_id}]]
        if self.fail:
            error = {"prompt_id": prompt_id, "node_id": "2", "node_type": "GlyphSR_TextRestore",
                     "exception_type": "RuntimeError", "exception_message": f"{self.name} is broken"}
            messages.append(["execution_error", error])
            self.history[prompt_id] = {"outputs": {}, "status": {"status_str": "error", "messages": messages}}
            self._send(client_id, {"type": "execution_error", "data": error}, split=True)
            return
        with Image.open(self.input_dir / image_name) as im:
            big = im.convert("RGB").resize((im.width * 2, im.height * 2))
        for node_id, node in prompt.items():
            kind = {"SaveImage": "output", "PreviewImage": "temp"}.get(node["class_type"])
            if kind is None:
                continue
            items = []
            for i in range(self.images_per_save if kind == "output" else 1):
                filename = f"{node['inputs'].get('filename_prefix', 'ComfyUI')}_{uuid.uuid4().hex[:6]}_{i}.png"
                big.save((self.output_dir if kind == "output" else self.temp_dir) / filename)
                items.append({"filename": filename, "subfolder": "", "type": kind})
            outputs[node_id] = {"images": items}
        messages.append(["execution_success", {"prompt_id": prompt_id}])
        self.history[prompt_id] = {"outputs": outputs, "status": {"status_str": "success", "messages": messages}}
        self._send(client_id, {"type": "execution_success", "data": {"prompt_id": prompt_id}}, split=True)

    def stop(self) -> None:
        """Vanish: drop every websocket and refuse new connections."""
        self.alive = False
        for sock in list(self.sockets.values()):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        threading.Thread(target=self.httpd.shutdown, daemon=True).start()
        self.httpd.server_close()


def _handler(fake: FakeComfy):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _json(self, payload, status: int = 200) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/ws":
                return self._websocket(query["clientId"])
            if url.path == "/queue":
                running = [[0, p] for p in fake.running] + [[0, "foreign"]] * fake.foreign_load
                return self._json({"queue_running": running[:1], "queue_pending": running[1:] + fake.pending})
            if url.path.startswith("/history/"):
                prompt_id = url.path.rsplit("/", 1)[1]
                return self._json({prompt_id: fake.history[prompt_id]} if prompt_id in fake.history else {})
            if url.path == "/view":
                folder = fake.output_dir if query.get("type") == "output" else fake.temp_dir
                body = (folder / query.get("subfolder", "") / query["filename"]).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                return self.wfile.write(body)
            self._json({}, 404)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/upload/image":
                return self._upload(body)
            payload = json.loads(body or b"{}")
            if self.path == "/prompt" and fake.reject:
                return self._json({"error": {"type": "prompt_outputs_failed_validation",
                                             "message": "Prompt outputs failed validation", "details": ""},
                                   "node_errors": {"2": {"class_type": "GlyphSR_TextRestore", "errors": [
                                       {"message": "Value not in list", "details": "model: 'x.pth' not in []"}]}}}, 400)
            if self.path == "/prompt":
                prompt_id = uuid.uuid4().hex
                with fake.lock:
                    fake.pending.append((prompt_id, payload["prompt"], payload["client_id"]))
                    fake.lock.notify_all()
                return self._json({"prompt_id": prompt_id, "number": 0, "node_errors": {}})
            self._json({})

        def _upload(self, body: bytes) -> None:
            message = email.message_from_bytes(b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n"
                                               + body, policy=email.policy.HTTP)
            fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
            subfolder = fields["subfolder"].get_content().strip()
            name = fields["image"].get_filename()
            (fake.input_dir / subfolder).mkdir(exist_ok=True)
            (fake.input_dir / subfolder / name).write_bytes(fields["image"].get_payload(decode=True))
            self._json({"name": name, "subfolder": subfolder, "type": "input"})

        def _websocket(self, client_id: str) -> None:
            key = self.headers["Sec-WebSocket-Key"]
            accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept.decode())
            self.end_headers()
            self.wfile.flush()
            sock = self.connection
            fake.sockets[client_id] = sock  # registered before the greeting, as ComfyUI does
            sock.sendall(_frame(0x9, b"hi") + _frame(2, b"p" * 300) + _frame(2, b"P" * 70000)
                         + _frame(1, json.dumps({"type": "status", "data": {}}).encode()))
            try:
                while fake.alive and sock.recv(1024):
                    pass  # pongs and the close frame
            except OSError:
                pass
            fake.sockets.pop(client_id, None)
            self.close_connection = True

    return Handler
