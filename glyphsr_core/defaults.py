"""The one set of defaults shared by the ComfyUI nodes, the shipped workflows and the CLI.

Sampling follows the authors' benchmark runs (the settings behind the paper's figures): 50 steps,
the scene and text prompt pairs alternating step by step, the text pair alone for the last 10 %
of the steps, and CFG ramped linearly from 4.0 at the first step to 7.5 at the last, for both
pairs. The authors' released sampler alternates to the very end; `schedule="alternate"` gives that.

Nodes read these for their widget defaults, `tools/workflow_graphs.py` writes them into the
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

# Tiling (glyphsr_core.tiling). Two kinds with two names, never mixed:
#: Text Restore tile side, in input pixels (bounds memory; the result does not depend on it)
RESTORE_TILE = 512
#: Text Restore context margin, in input pixels: the band neighbouring tiles share; each tile reads half
#: of it beyond the part it keeps, and that half is discarded (node input and CLI flag: tile_overlap)
RESTORE_CONTEXT_MARGIN = 32
#: tiled sampling tile side, in output (image) pixels: SDXL's native size (the tiled node's widget)
SAMPLE_TILE = 1024
#: tiled sampling blend overlap, in output pixels: the least band neighbouring tiles share, across which
#: their predictions are blended with smooth weights (node input: tile_overlap; CLI: --sample-tile-overlap)
SAMPLE_BLEND_OVERLAP = 128
#: sampling tiles per model call
SAMPLE_TILE_BATCH = 1
