"""The one set of defaults shared by the ComfyUI nodes, the shipped workflows and the CLI.

Sampling follows the authors' benchmark runs (the settings behind the paper's figures): 50 steps,
the scene and text prompt pairs alternating step by step, the text pair alone for the last 10 %
of the steps, and CFG ramped linearly from 4.0 at the first step to 7.5 at the last, for both
pairs. The authors' released sampler alternates to the very end; `schedule="alternate"` gives that.

Nodes read these for their widget defaults, `tests/tools/workflow_graphs.py` writes them into the
workflows, and `python -m glyphsr_core upscale` uses them for its flags, so the same image with
the same settings takes the same path in ComfyUI and headless.
"""

from __future__ import annotations

STEPS = 50
SCHEDULE = "alternate_then_text"
SWITCH_AT = 0.9
PATTERN = "ST"
CFG = 7.5
TEXT_CFG = 7.5
CFG_START = 4.0

MAX_WORDS = 24
MIN_CONFIDENCE = 0.5
#: growth of the text mask that drives mask fusion, in output pixels
MASK_DILATION = 8
CONTROL_STRENGTH = 1.0
DENOISE = 1.0
COLOR_FIX = "wavelet"

# Text Guard (headless `upscale --guard`; the node's widgets)
GUARD_ROUNDS = 2
GUARD_DENOISE = 0.75
GUARD_DILATION = 8
