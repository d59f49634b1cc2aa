"""Client for a real ComfyUI server started by the integration harness (see conftest.py).

Import it in tests as `from comfy_client import Graph, ComfyExecutionError` (this folder is on
sys.path while pytest runs its tests). Never imports ComfyUI itself: only HTTP/websocket on loopback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import tiny_models

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
PACK_DIR_NAME = "ComfyUI-GlyphSR"
MODEL_FOLDERS = ("checkpoints", "controlnet", "LLM", "vae", "upscale_models")
START_TIMEOUT_S = float(os.environ.get("GLYPHSR_COMFY_START_TIMEOUT", "240"))
PROMPT_TIMEOUT_S = float(os.environ.get("GLYPHSR_COMFY_PROMPT_TIMEOUT", "600"))


class ComfyPromptError(RuntimeError):
    """ComfyUI rejected the prompt at validation (HTTP 400). `.payload` is ComfyUI's JSON answer."""

    def __init__(self, payload: dict):
        self.payload = payload
        super().__init__("ComfyUI rejected the prompt:\n" + json.dumps(payload, indent=1)[:6000])


class ComfyExecutionError(RuntimeError):
    """A node raised while the prompt ran. `.payload` is ComfyUI's `execution_error` message
    (node_id, node_type, exception_type, exception_message, traceback, ...)."""

    def __init__(self, payload: dict, log_tail: str = ""):
        self.payload = payload
        self.node_id = payload.get("node_id")
        self.node_type = payload.get("node_type")
        self.exception_type = payload.get("exception_type")
        self.exception_message = payload.get("exception_message", "")
        trace = "".join(payload.get("traceback") or [])
        super().__init__(
            f"node {self.node_id} ({self.node_type}) failed: {self.exception_type}: "
            f"{self.exception_message}\n{trace}"
            + (f"\n--- server log tail ---\n{log_tail}" if log_tail else "")
        )


class ComfyInterrupted(ComfyExecutionError):
    """The prompt was interrupted (Cancel / POST /interrupt) before it finished.
    `.payload` is ComfyUI's `execution_interrupted` message (node_id, node_type, executed)."""

    def __init__(self, payload: dict):
        self.payload = payload
        self.node_id = payload.get("node_id")
        self.node_type = payload.get("node_type")
        self.exception_type = "InterruptProcessingException"
        self.exception_message = "prompt was interrupted"
        RuntimeError.__init__(self, f"prompt was interrupted at node {self.node_id} ({self.node_type})")


@dataclass
class PromptResult:
    """The outcome of one queued prompt."""

    prompt_id: str
    outputs: dict  # node id -> the node's UI output, e.g. {"images": [{"filename", "subfolder", "type"}]}
    history: dict  # the full /history entry
    messages: list = field(default_factory=list)  # websocket JSON messages for this prompt, in order
    server: "ComfyServer | None" = None

    def files(self, node_id: str, key: str = "images") -> list[Path]:
        """Paths on disk of the files a SaveImage/PreviewImage-like node reported."""
        out = []
        for item in self.outputs.get(str(node_id), {}).get(key, []):
            out.append(self.server.file_path(item))
        return out

    def executed_nodes(self) -> list[str]:
        """Node ids that actually ran (not served from cache), in order."""
        return [m["data"]["node"] for m in self.messages
                if m.get("type") == "executing" and m["data"].get("node") is not None]


class Graph:
    """A tiny API-format prompt builder.

        g = Graph(server)                  # with a server: unset widget inputs get their defaults
        ckpt = g.node("CheckpointLoaderSimple", ckpt_name=name)
        g.node("CLIPTextEncode", text="a sign", clip=ckpt.out(1))
        server.queue(g)
    """

    def __init__(self, server: "ComfyServer | None" = None):
        self.nodes: dict[str, dict] = {}
        self._server = server

    class Node:
        def __init__(self, graph: "Graph", node_id: str):
            self.graph, self.id = graph, node_id

        def out(self, index: int) -> list:
            return [self.id, index]

        def set(self, **inputs) -> "Graph.Node":
            self.graph.nodes[self.id]["inputs"].update(inputs)
            return self

    def node(self, class_type: str, node_id: str | None = None, **inputs) -> "Graph.Node":
        node_id = node_id or str(len(self.nodes) + 1)
        if self._server is not None:
            inputs = {**self._server.widget_defaults(class_type), **inputs}
        self.nodes[node_id] = {"class_type": class_type, "inputs": dict(inputs)}
        return Graph.Node(self, node_id)

    def prompt(self) -> dict:
        return json.loads(json.dumps(self.nodes))


class ComfyServer:
    """A running ComfyUI with this pack installed, plus an HTTP/websocket client.

    Attributes: url, port, base_dir, models_dir (with checkpoints/, controlnet/, LLM/, vae/),
    input_dir, output_dir, temp_dir, custom_nodes_dir, log_path, comfyui_dir, process.
    Client: queue(prompt|Graph) -> PromptResult; object_info([node]); widget_defaults(node);
    history(id); get(route) / post(route, payload); interrupt(); free(); install_model(path, folder)
    -> name; file_path(ui_item); log_text(); log_tail(n).
    Files dropped into models_dir/input_dir later are picked up (ComfyUI re-lists a folder when
    its mtime changes).
    """

    def __init__(self, comfyui_dir: Path, base_dir: Path, python: str | None = None):
        self.comfyui_dir = Path(comfyui_dir)
        self.base_dir = Path(base_dir)
        self.python = python or tiny_models.comfy_python()
        self.models_dir = self.base_dir / "models"
        self.input_dir = self.base_dir / "input"
        self.output_dir = self.base_dir / "output"
        self.temp_dir = self.base_dir / "temp"
        self.custom_nodes_dir = self.base_dir / "custom_nodes"
        self.log_path = self.base_dir / "comfyui.log"
        self.config_path = self.base_dir / "extra_model_paths.yaml"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.client_id = uuid.uuid4().hex

    # ---- lifecycle -------------------------------------------------------------------------

    def prepare(self) -> None:
        for folder in MODEL_FOLDERS:
            (self.models_dir / folder).mkdir(parents=True, exist_ok=True)
        for d in (self.input_dir, self.output_dir, self.temp_dir, self.custom_nodes_dir):
            d.mkdir(parents=True, exist_ok=True)
        link = self.custom_nodes_dir / PACK_DIR_NAME
        if not link.exists():
            link.symlink_to(REPO_ROOT, target_is_directory=True)
        lines = ["glyphsr_tests:", f"    base_path: {self.base_dir}", "    is_default: true",
                 "    custom_nodes: custom_nodes"]
        lines += [f"    {folder}: models/{folder}" for folder in MODEL_FOLDERS]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        self.prepare()
        cmd = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base_dir),
               "--output-directory", str(self.output_dir),
               "--input-directory", str(self.input_dir),
               "--extra-model-paths-config", str(self.config_path),
               "--database-url", f"sqlite:///{self.base_dir / 'comfyui.db'}", "--disable-assets-autoscan",
               "--disable-auto-launch", "--disable-api-nodes", "--preview-method", "none"]
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                   PYTHONUNBUFFERED="1")
        if env.get("PYTHONPATH"):  # never hand the comfy stand-in to the real server
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in env["PYTHONPATH"].split(os.pathsep) if "comfy_standin" not in p)
        self._log_file = open(self.log_path, "wb")
        self.process = subprocess.Popen(cmd, cwd=str(self.comfyui_dir), env=env,
                                        stdout=self._log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with code {self.process.returncode} during start-up:\n"
                                   f"{self.log_tail()}")
            try:
                self.get("/system_stats", timeout=5)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"ComfyUI did not answer on {self.url} within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        if getattr(self, "_log_file", None):
            self._log_file.close()

    # ---- HTTP ------------------------------------------------------------------------------

    def get(self, route: str, timeout: float = 60):
        """GET a route; returns the decoded JSON answer (None for an empty body)."""
        with urllib.request.urlopen(self.url + route, timeout=timeout) as resp:
            return _json_or_none(resp.read())

    def post(self, route: str, payload: dict | None = None, timeout: float = 60):
        """POST JSON to a route (/prompt, /interrupt, /free, ...); returns the JSON answer or None."""
        req = urllib.request.Request(self.url + route, data=json.dumps(payload or {}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return _json_or_none(resp.read())

    def object_info(self, node_class: str | None = None) -> dict:
        """GET /object_info (all nodes) or the entry of one node class (KeyError if unknown)."""
        if node_class is None:
            return self.get("/object_info")
        info = self.get("/object_info/" + urllib.parse.quote(node_class))
        if node_class not in info:
            raise KeyError(f"ComfyUI has no node {node_class!r}")
        return info[node_class]

    def widget_defaults(self, node_class: str) -> dict:
        """Default values of a node's required widget inputs (combos: their first option).
        Unknown nodes give {} so that ComfyUI itself reports them when the prompt is queued."""
        cache = self.__dict__.setdefault("_defaults", {})
        if node_class not in cache:
            values = {}
            try:
                required = self.object_info(node_class)["input"].get("required", {})
            except KeyError:
                required = {}
            for name, spec in required.items():
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if "default" in options:
                    values[name] = options["default"]
                elif isinstance(spec[0], list) and spec[0]:
                    values[name] = spec[0][0]
                elif spec[0] == "COMBO" and options.get("options"):
                    values[name] = options["options"][0]
            cache[node_class] = values
        return dict(cache[node_class])

    def history(self, prompt_id: str) -> dict | None:
        return self.get(f"/history/{prompt_id}").get(prompt_id)

    def queue(self, prompt: "dict | Graph", timeout: float = PROMPT_TIMEOUT_S,
              websocket: bool = True, on_message=None) -> PromptResult:
        """Queue an API-format prompt, wait until it finishes, return its outputs.

        Follows the run on the websocket (websocket-client) when installed and `websocket` is true,
        else polls /history. Raises ComfyPromptError (validation), ComfyExecutionError (a node
        raised), or TimeoutError after `timeout` seconds (the prompt is then interrupted).
        `on_message(msg)` is called with each websocket JSON message of this prompt as it arrives
        (e.g. interrupt on the first {"type": "progress"}); it needs the websocket.
        """
        if on_message is not None and not websocket:
            raise ValueError("on_message needs websocket=True")
        if isinstance(prompt, Graph):
            prompt = prompt.prompt()
        ws = self._connect_ws() if websocket else None
        if on_message is not None and ws is None:
            raise RuntimeError("on_message needs the websocket-client package")
        try:
            try:
                answer = self.post("/prompt", {"prompt": prompt, "client_id": self.client_id})
            except urllib.error.HTTPError as err:
                body = err.read().decode(errors="replace")
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"http_status": err.code, "body": body}
                raise ComfyPromptError(payload) from None
            prompt_id = answer["prompt_id"]
            messages = self._wait(prompt_id, ws, timeout, on_message)
        finally:
            if ws is not None:
                ws.close()
        entry = self._history_when_recorded(prompt_id, timeout=30)
        status = entry.get("status", {})
        for kind, data in status.get("messages", []):
            if kind == "execution_error":
                raise ComfyExecutionError(data, self.log_tail(40))
            if kind == "execution_interrupted":
                raise ComfyInterrupted(data)
        if status.get("status_str") == "error":
            raise ComfyExecutionError({"exception_message": f"prompt ended with status {status}"},
                                      self.log_tail(40))
        return PromptResult(prompt_id, entry.get("outputs", {}), entry, messages, self)

    def _history_when_recorded(self, prompt_id: str, timeout: float) -> dict:
        """The /history entry; ComfyUI records it just after announcing the end on the websocket."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.history(prompt_id)
            if entry is not None:
                return entry
            if time.monotonic() > deadline:
                raise TimeoutError(f"prompt {prompt_id} finished but never reached /history\n{self.log_tail(40)}")
            time.sleep(0.05)

    def _connect_ws(self):
        try:
            import websocket  # websocket-client
        except ImportError:
            return None
        ws = websocket.WebSocket()
        ws.connect(f"ws://127.0.0.1:{self.port}/ws?clientId={self.client_id}", timeout=30)
        return ws

    def _wait(self, prompt_id: str, ws, timeout: float, on_message=None) -> list:
        """Follow the prompt until done; websocket events when available, else poll /history."""
        deadline = time.monotonic() + timeout
        messages: list = []
        while time.monotonic() < deadline:
            if ws is None:
                if self.history(prompt_id) is not None:
                    return messages
                time.sleep(0.25)
                continue
            ws.settimeout(max(0.1, min(5.0, deadline - time.monotonic())))
            try:
                raw = ws.recv()
            except Exception as err:  # websocket timeout: re-check the history (cheap) and go on
                if type(err).__name__ != "WebSocketTimeoutException":
                    raise
                if self.history(prompt_id) is not None:
                    return messages
                continue
            if not isinstance(raw, str):
                continue  # binary preview frames
            msg = json.loads(raw)
            data = msg.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if data.get("prompt_id") == prompt_id:
                messages.append(msg)
                if on_message is not None:
                    on_message(msg)
            kind = msg.get("type")
            if kind in ("execution_error", "execution_interrupted", "execution_success"):
                return messages
            if kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                return messages
        try:
            self.interrupt()
        except OSError:
            pass
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f}s\n{self.log_tail(40)}")

    def queue_cancelled_at_first_progress(self, prompt: "dict | Graph", timeout: float = 300) -> tuple["ComfyInterrupted", float]:
        """Queue `prompt`, POST /interrupt on its first progress message (Cancel once sampling runs);
        returns the ComfyInterrupted it ended with and the seconds it took."""
        fired: list = []

        def interrupt_once_sampling(msg):
            if msg["type"] == "progress" and not fired:
                fired.append(msg)
                self.interrupt()

        started = time.monotonic()
        try:
            self.queue(prompt, timeout=timeout, on_message=interrupt_once_sampling)
        except ComfyInterrupted as err:
            assert fired, "interrupted, but no progress message arrived first"
            return err, time.monotonic() - started
        raise AssertionError("the prompt finished instead of being cancelled")

    def interrupt(self) -> None:
        """Ask ComfyUI to stop the running prompt (what the Cancel button does)."""
        self.post("/interrupt")

    def free(self, unload_models: bool = True, free_memory: bool = True) -> None:
        """Ask ComfyUI to unload models / drop cached outputs (POST /free)."""
        self.post("/free", {"unload_models": unload_models, "free_memory": free_memory})

    # ---- files and logs --------------------------------------------------------------------

    def file_path(self, item: dict) -> Path:
        """Path of an output item {"filename", "subfolder", "type": output|temp|input}."""
        root = {"output": self.output_dir, "temp": self.temp_dir, "input": self.input_dir}[item.get("type", "output")]
        return root / item.get("subfolder", "") / item["filename"]

    def log_text(self) -> str:
        if getattr(self, "_log_file", None) and not self._log_file.closed:
            self._log_file.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def install_model(self, path: Path, folder: str) -> str:
        """Put a model file into models/<folder>; returns the name ComfyUI's loaders list."""
        return tiny_models.install_model(Path(path), self.models_dir / folder).name


def _json_or_none(body: bytes):
    return json.loads(body) if body.strip() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
