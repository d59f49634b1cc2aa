"""Tiling, in one place. Two kinds of tiling with two names:

- **context margin** (Text Restore, input pixels, `context`): the restorer reads each tile with
  extra pixels around it and keeps only the middle, so the tiled result equals the untiled one
  (`context.plan_tiles`, `context.run_tiled`).
- **blend overlap** (tiled sampling, output pixels, `grid`): at every model evaluation overlapping
  latent tiles are predicted and their predictions blended with smooth weights, so no seam can form
  (`grid.tile_grid`, `grid.blend_weights`; `tensors`: the per-tile crops of hints and prompt
  embeddings; `prompts`: each tile's own words; `sampler`: the headless diffusers sampler's tiles).

The ComfyUI tiled sampler (`nodes/tiled_pingpong.py`, `nodes/tiled_conditioning.py`) uses `grid`,
`tensors` and `prompts`; the defaults of both kinds live in `glyphsr_core.defaults`.
"""
