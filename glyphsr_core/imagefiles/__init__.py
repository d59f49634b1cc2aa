"""Image files in and out of the headless commands: every format users have, said when it changes.

Reading (`read_image`) turns whatever Pillow decodes into 8-bit sRGB colour plus a separate alpha:
16-bit and 32-bit float files are scaled (not clipped), palettes, 1-bit, CMYK and YCbCr converted,
EXIF orientation applied, an embedded non-sRGB ICC profile converted to sRGB, the first frame of
an animation or multi-page file taken (with a warning). `ImageFileInfo` records all of it for the
report. Writing (`save_atomically`) picks the format from the extension, re-attaches the upscaled
alpha where the format holds one and says what it could not keep (16 bits, alpha in JPEG).
"""

from .alpha import composite_over_white, join_alpha
from .opening import ImageFileInfo, OpenedImage, open_image_file, read_image
from .saving import OUTPUT_FORMATS, SavedImage, check_output_path, save_atomically

__all__ = ["OUTPUT_FORMATS", "ImageFileInfo", "OpenedImage", "SavedImage", "check_output_path",
           "composite_over_white", "join_alpha", "open_image_file", "read_image", "save_atomically"]
