"""Run a workflow on ComfyUI servers over their HTTP API (the `queue` command's building blocks).

client: one server (upload, queue, follow on the websocket, download); wsock: the stdlib websocket;
workflow: the API-format workflow and its input node; jobs: inputs and output names; manifest: what
is done; scheduler: least-busy choice and retry on another server. Nothing here imports ComfyUI.
"""

from .client import ComfyClient, PromptFailed, ServerUnavailable
from .jobs import Job, expand_inputs
from .manifest import MANIFEST_NAME, Manifest
from .scheduler import Outcome, ServerPool, run_all
from .workflow import Workflow, load_workflow

__all__ = ["ComfyClient", "PromptFailed", "ServerUnavailable", "Job", "expand_inputs", "MANIFEST_NAME", "Manifest",
           "Outcome", "ServerPool", "run_all", "Workflow", "load_workflow"]
