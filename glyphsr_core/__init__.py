"""GLYPH-SR core: text-aware super-resolution pieces that run without ComfyUI.

Submodules are imported on demand so that `import glyphsr_core` stays cheap; OCR, VLM and
diffusers back-ends load their heavy dependencies only when first used.
"""

__version__ = "0.1.0"
