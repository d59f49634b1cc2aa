"""Image files as users have them: 16-bit grey and EXIF-rotated phone photos open as they look."""

from __future__ import annotations

import numpy as np
from PIL import Image

from glyphsr_core.imageops import open_image_file, to_pil_rgb


def test_16_bit_grey_keeps_its_tones(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 32).reshape(32, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as raw:
        assert raw.mode.startswith("I")  # what Pillow hands over: 16-bit values
    rgb = np.asarray(to_pil_rgb(open_image_file(tmp_path / "grey16.png")))
    expected = np.clip(ramp / 257.0 + 0.5, 0, 255).astype(np.uint8)
    assert rgb.shape == (32, 64, 3) and np.array_equal(rgb[..., 0], expected)
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255 and 120 < rgb[16, 32, 0] < 136  # not blown out


def test_exif_rotated_photo_opens_upright(tmp_path):
    picture = Image.new("RGB", (40, 20), (255, 255, 255))
    picture.paste((200, 0, 0), (0, 0, 10, 20))  # red on the left when upright
    stored = picture.transpose(Image.Transpose.ROTATE_90)  # as the camera wrote it: 20 x 40
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    opened = open_image_file(tmp_path / "phone.jpg")
    assert opened.size == (40, 20)
    pixels = np.asarray(opened.convert("RGB"), dtype=int)
    assert pixels[10, 3, 0] > 150 and pixels[10, 3, 1] < 80  # red where the photographer saw it
    assert pixels[10, 36].min() > 200
