"""The CLI commands, one module per command, named after it (`make-corpus` -> `make_corpus`).

Each module exposes `configure(parser)` and `run(args) -> int`; `glyphsr_core.cli` lists them.
Heavy imports (torch, diffusers, OCR engines) stay inside `run`, so `--help` stays fast.
"""
