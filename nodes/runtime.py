"""ComfyUI runtime services shared by the nodes: progress bars and interrupt checks."""

from __future__ import annotations

import comfy.model_management
import comfy.utils

CATEGORY = "GlyphSR"


def check_interrupt() -> None:
    """Raise ComfyUI's interrupt exception if the user pressed Cancel."""
    comfy.model_management.throw_exception_if_processing_interrupted()


def is_interrupted() -> bool:
    return comfy.model_management.processing_interrupted()


def progress_bar(total: int) -> "comfy.utils.ProgressBar":
    return comfy.utils.ProgressBar(total)


def output_device():
    """Where node outputs (IMAGE, MASK, LATENT) live between nodes."""
    return comfy.model_management.intermediate_device()
