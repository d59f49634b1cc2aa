"""Everything the method does with words once OCR has read them.

`prompts`: scene and text prompt assembly; `glyphs`: glyph map and text mask rendering; `fonts`: the
font chain that draws words in any script; `text_input`: words typed by the user (lines or JSON);
`fidelity`: which guidance words survived an upscale; `metrics`: OCR F1 and friends; `preview`:
the annotated preview image. Reading the text is `glyphsr_core.ocr`.
"""
