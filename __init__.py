"""ComfyUI-GlyphSR: text-aware super-resolution nodes (GLYPH-SR) for ComfyUI.

ComfyUI imports this file as the pack's entry point. Only light modules are imported here;
OCR, VLM and diffusers back-ends load on first use so a missing optional dependency never
stops the pack from loading.
"""

#: the Review Words dialog (plain JavaScript, no build step), served by ComfyUI under /extensions/<pack>/
WEB_DIRECTORY = "./web"

if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
    from .nodes.review_words import register_routes

    register_routes()  # the dialog's POST routes on ComfyUI's server; nothing happens outside ComfyUI
else:
    # Imported as a plain module, not as a package: pytest does that to a checkout whose folder name
    # is not a Python identifier (e.g. "ComfyUI-GlyphSR") when it sets up the folder's tests. There are
    # no nodes to offer then; ComfyUI always imports the folder as a package.
    NODE_CLASS_MAPPINGS: dict = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict = {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
