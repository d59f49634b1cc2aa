"""Spread inputs over several ComfyUI servers: the least busy one first, another one on failure.

Busy = prompts in the server's queue (GET /queue, every client's) + inputs this run has picked for it
but not queued yet (uploading). A server that does not answer is left aside for `rest_s` seconds.
An input that fails on a server (node error, refused prompt, dropped connection) is tried on each
other server once; it fails when every server has failed it or none answers.
"""

from __future__ import annotations

import logging
import queue as queue_mod
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .client import ComfyClient, PromptFailed, ServerUnavailable
from .jobs import Job
from .workflow import Workflow

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of one input (a manifest line)."""

    job: Job
    status: str  # "done" or "failed"
    server: str | None = None
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    attempts: list[dict] = field(default_factory=list)  # {"server", "error"} of each failed try


class ServerPool:
    """The servers, their health, and the choice of the least busy one."""

    def __init__(self, clients: list[ComfyClient], rest_s: float = 30.0):
        self.clients = clients
        self.rest_s = rest_s
        self._lock = threading.Lock()
        self._reserved = {c.url: 0 for c in clients}
        self._assigned = {c.url: 0 for c in clients}
        self._down_until = {c.url: 0.0 for c in clients}

    def choose(self, exclude: set[str]) -> ComfyClient | None:
        """The least busy answering server not in `exclude` (reserved for the caller), or None."""
        now = time.monotonic()
        loads: dict[str, int] = {}
        for client in self.clients:
            if client.url in exclude or self._down_until[client.url] > now:
                continue
            try:
                loads[client.url] = client.load()
            except (ServerUnavailable, PromptFailed, ValueError):
                self.mark_down(client.url)
        with self._lock:
            if not loads:
                return None
            # ties go to the server this run gave fewer inputs, then to the order given
            best = min(loads, key=lambda u: (loads[u] + self._reserved[u], self._assigned[u]))
            self._reserved[best] += 1
            self._assigned[best] += 1
        return next(c for c in self.clients if c.url == best)

    def release(self, url: str) -> None:
        """The reserved input is in the server's own queue now (counted by GET /queue), or never will be."""
        with self._lock:
            self._reserved[url] = max(0, self._reserved[url] - 1)

    def mark_down(self, url: str) -> None:
        with self._lock:
            self._down_until[url] = time.monotonic() + self.rest_s


def run_on(client: ComfyClient, job: Job, workflow: Workflow, out_dir: Path, pool: ServerPool,
           timeout: float) -> list[str]:
    """Upload, queue, follow and download one input on one server; returns the output paths (relative to OUT)."""
    client_id = uuid.uuid4().hex
    prompt_id, ws = None, None
    try:
        try:
            image = client.upload(job.source, job.upload_name())
            ws = client.connect(client_id)
            prompt_id = client.submit(workflow.for_image(image), client_id)
        finally:
            pool.release(client.url)
        entry = client.wait(prompt_id, ws, timeout)
    except ServerUnavailable:
        if prompt_id is not None:
            client.cancel(prompt_id)  # if the server is still there, do not leave the prompt running for nobody
        raise
    finally:
        if ws is not None:
            ws.close()
    outputs = []
    for node_id in sorted(entry.get("outputs", {}), key=lambda k: (len(k), k)):
        saved = [i for i in entry["outputs"][node_id].get("images", []) if i.get("type") == "output"]
        for index, item in enumerate(saved):
            name = job.output_name(node_id, index, item["filename"])
            client.download(item, out_dir / name)
            outputs.append(name)
    return outputs


def process(job: Job, workflow: Workflow, out_dir: Path, pool: ServerPool, timeout: float) -> Outcome:
    """Try the input on the least busy server, then on each other one until it works."""
    tried: set[str] = set()
    attempts: list[dict] = []
    while True:
        client = pool.choose(tried)
        if client is None:
            untried = [c.url for c in pool.clients if c.url not in tried]
            if not attempts:
                error = f"no server answering ({', '.join(untried)})"
            elif untried:
                error = f"{attempts[-1]['error']} (and no other server answering: {', '.join(untried)})"
            else:
                error = attempts[-1]["error"] + (" (failed on every server)" if len(attempts) > 1 else "")
            return Outcome(job, "failed", error=error, attempts=attempts)
        tried.add(client.url)
        started = time.monotonic()
        try:
            outputs = run_on(client, job, workflow, out_dir, pool, timeout)
        except ServerUnavailable as exc:
            pool.mark_down(client.url)
            attempts.append({"server": client.url, "error": str(exc)})
        except PromptFailed as exc:
            attempts.append({"server": client.url, "error": str(exc)})
        except OSError as exc:  # reading the input or writing OUT: no other server would help
            return Outcome(job, "failed", error=f"{type(exc).__name__}: {exc}", attempts=attempts)
        else:
            return Outcome(job, "done", client.url, round(time.monotonic() - started, 3), outputs, attempts=attempts)


def run_all(jobs: list[Job], workflow: Workflow, out_dir: Path, pool: ServerPool, *, per_server: int = 2,
            timeout: float = 600.0, on_done: Callable[[Outcome], None] = lambda o: None) -> list[Outcome]:
    """Process every job with `per_server` workers per server; `on_done` sees each outcome as it comes
    (if it raises, the workers stop taking inputs and the error is raised here once they are done)."""
    todo: queue_mod.Queue[Job] = queue_mod.Queue()
    for job in jobs:
        todo.put(job)
    outcomes: list[Outcome] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                job = todo.get_nowait()
            except queue_mod.Empty:
                return
            try:
                outcome = process(job, workflow, out_dir, pool, timeout)
            except Exception as exc:  # a bug must cost this input, not the run's count of failures
                log.exception("queue: %s", job.source)
                outcome = Outcome(job, "failed", error=f"internal error: {type(exc).__name__}: {exc}")
            with lock:
                outcomes.append(outcome)
                if not errors:
                    try:
                        on_done(outcome)
                    except Exception as exc:  # e.g. the manifest cannot be written: stop taking inputs
                        errors.append(exc)
            if errors:
                return

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, per_server * len(pool.clients)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return outcomes
