"""Our re-implementations of ComfyUI rules, compared with ComfyUI 0.15.1's own functions.

Run in a subprocess with ComfyUI's interpreter (tiny_models.run_comfy_python), which imports the real
`comfy.controlnet` and `comfy.sd1_clip` beside this repository's `glyphsr_core`:
- the text mask's batch broadcast (fusion.broadcast_batch) picks, for every model-batch item, the same
  image as ComfyUI's `broadcast_image_to` picks for the ControlNet hint, cond and uncond stacked;
- a prompt from Build Prompts, read by ComfyUI's tokenizer rules (escape, weights, unescape), carries
  no weight and is exactly the text the headless pipeline and training give CLIP.
"""

from __future__ import annotations

import json
from pathlib import Path

import tiny_models

REPO = Path(__file__).resolve().parents[2]

CODE = """
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from comfy.controlnet import broadcast_image_to
from comfy.sd1_clip import escape_important, token_weights, unescape_important
from glyphsr_core.sampling.fusion import broadcast_batch
from glyphsr_core.text.prompts import build_prompts
from glyphsr_core.types import OcrResult, TextRegion, quad_from_box

mismatches = []
for images in range(1, 7):
    for latent_batch in range(1, 5):
        for groups in (1, 2, 3):
            batch = latent_batch * groups
            index = torch.arange(images, dtype=torch.float32).view(images, 1, 1, 1)
            hint = index if images == batch else broadcast_image_to(index, batch, groups)
            hint = hint.expand(batch, 1, 1, 1).flatten().tolist()
            mask = broadcast_batch(index, batch, groups).flatten().tolist()
            if hint != mask:
                mismatches.append([images, batch, groups, hint, mask])

prompts = []
for word in ["(OPEN)", "[SALE]", "(x:1.5)", "((24/7))", "C:\\\\(DATA)", "a\\\\", "\\\\)", "{50%}"]:
    result = OcrResult(10, 10, (TextRegion(word, 0.9, quad_from_box((0.1, 0.1, 0.3, 0.3))),))
    node = build_prompts("a shop", result, escape_weights=True).text_positive
    headless = build_prompts("a shop", result).text_positive
    segments = [(unescape_important(text), weight) for text, weight in token_weights(escape_important(node), 1.0)]
    prompts.append([word, segments, headless])
print(json.dumps({"mismatches": mismatches, "prompts": prompts}))
"""


def test_mask_broadcast_and_prompt_escaping_follow_comfyui():
    proc = tiny_models.run_comfy_python(CODE, str(REPO), timeout=300)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["mismatches"] == []
    for word, segments, headless in result["prompts"]:
        assert [weight for _, weight in segments] == [1.0] * len(segments), (word, segments)
        assert "".join(text for text, _ in segments) == headless, word
