"""Image files as users have them: every format Pillow writes (and 16-bit colour PNGs it reads),
opened as they look, and results written in the format the output's extension names."""

from __future__ import annotations

import io
import logging
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFilter

from glyphsr_core.errors import ImageInputError, InvalidInputError
from glyphsr_core.imagefiles import composite_over_white, join_alpha, read_image, save_atomically
from glyphsr_core.imageops import open_image_file, to_pil_rgb
from iccprofiles import ADOBE_RGB, DISPLAY_P3, expected_srgb, icc_profile
from test_restore_cli import bicubic_file  # noqa: F401  (a fixture: a Text Restore net that is bicubic)


def write_png16(path, values: np.ndarray) -> None:
    """A 16-bit PNG (grey + alpha, RGB or RGBA) byte by byte: Pillow reads these but cannot write them."""
    height, width = values.shape[:2]
    colour_type = {2: 4, 3: 2, 4: 6}[values.shape[2]]
    rows = b"".join(b"\0" + values[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def write_tiff16(path, values: np.ndarray) -> None:
    """An uncompressed 16-bit RGB TIFF (a scanner's or a raw developer's export) byte by byte."""
    height, width, _ = values.shape
    data = values.astype("<u2").tobytes()
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 3, 8 + 2 + 12 * 10 + 4),
               (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 8 + 2 + 12 * 10 + 4 + 6), (277, 3, 1, 3),
               (278, 3, 1, height), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 and count == 1
                                                 else struct.pack("<I", value)) for tag, kind, count, value in entries)
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + struct.pack("<3H", 16, 16, 16)
                     + data)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


# ------------------------------------------------------------------------------------------ reading
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
    assert read_image(tmp_path / "phone.jpg").info.notes == ["EXIF orientation 6 applied (turned upright)"]
    opened = open_image_file(tmp_path / "phone.jpg")
    assert opened.size == (40, 20)
    pixels_ = np.asarray(opened.convert("RGB"), dtype=int)
    assert pixels_[10, 3, 0] > 150 and pixels_[10, 3, 1] < 80  # red where the photographer saw it
    assert pixels_[10, 36].min() > 200


def test_16_bit_rgb_gradient_survives_within_one_level(tmp_path):
    x = np.linspace(0, 65535, 96)
    ramp = np.stack(np.broadcast_arrays(x[None, :], x[::-1][None, :], np.full((1, 96), 30000.0)), axis=-1)
    ramp = np.repeat(ramp, 8, axis=0).astype(np.uint16)
    write_png16(tmp_path / "rgb16.png", ramp)
    opened = read_image(tmp_path / "rgb16.png")
    error = np.abs(pixels(opened.colour) - ramp / 257.0)
    assert opened.colour.mode == "RGB" and error.max() < 1.0  # Pillow keeps the high byte: under one level
    assert opened.info.bits == 16 and not opened.info.grey and opened.alpha is None


def test_16_bit_rgb_tiff(tmp_path):
    values = np.random.default_rng(3).integers(0, 65536, (5, 9, 3)).astype(np.uint16)
    write_tiff16(tmp_path / "scan.tif", values)
    opened = read_image(tmp_path / "scan.tif")
    assert opened.info.bits == 16 and opened.colour.mode == "RGB"
    assert np.abs(pixels(opened.colour) - values / 257.0).max() < 1.0


def test_16_bit_alpha_with_colour_and_with_grey(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 65536, (6, 7, 4)).astype(np.uint16)
    write_png16(tmp_path / "rgba16.png", rgba)
    opened = read_image(tmp_path / "rgba16.png")
    assert opened.info.bits == 16 and opened.colour.mode == "RGB"
    assert np.abs(pixels(opened.colour) - rgba[..., :3] / 257.0).max() < 1.0
    assert np.abs(pixels(opened.alpha) - rgba[..., 3] / 257.0).max() < 1.0

    write_png16(tmp_path / "la16.png", rgba[..., 1:3])  # grey + alpha
    opened = read_image(tmp_path / "la16.png")
    assert opened.info.grey and opened.info.bits == 16 and opened.colour.mode == "L"
    assert np.abs(pixels(opened.colour) - rgba[..., 1] / 257.0).max() < 1.0
    assert np.abs(pixels(opened.alpha) - rgba[..., 2] / 257.0).max() < 1.0


@pytest.mark.parametrize("top", [1.0, 255.0])
def test_32_bit_float_tiff_is_scaled_by_its_range(tmp_path, top):
    ramp = np.linspace(0, top, 50, dtype=np.float32).reshape(5, 10)
    Image.fromarray(ramp).save(tmp_path / "float.tif")
    opened = read_image(tmp_path / "float.tif")
    assert opened.info.mode == "F" and opened.info.bits == 32 and opened.colour.mode == "L"
    assert np.abs(pixels(opened.colour) - ramp * (255.0 / top)).max() <= 0.5
    assert f"read as 0..{top:g} = black..white" in opened.info.notes[0]


def test_i16_big_endian_tiff(tmp_path):
    values = (np.arange(40).reshape(5, 8) * 1600).astype(">u2")
    Image.frombytes("I;16B", (8, 5), values.tobytes()).save(tmp_path / "big.tif")
    opened = read_image(tmp_path / "big.tif")
    assert opened.info.mode == "I;16B" and opened.info.bits == 16
    assert np.abs(pixels(opened.colour) - values / 257.0).max() <= 0.5


def test_one_bit_and_grey_with_alpha(tmp_path):
    bits = Image.new("1", (8, 4), 0)
    bits.paste(1, (0, 0, 4, 4))
    bits.save(tmp_path / "bits.png")
    opened = read_image(tmp_path / "bits.png")
    assert opened.info.bits == 1 and opened.colour.mode == "L"
    assert pixels(opened.colour)[:, :4].min() == 255 and pixels(opened.colour)[:, 4:].max() == 0

    la = Image.merge("LA", (Image.new("L", (6, 6), 40), Image.linear_gradient("L").resize((6, 6))))
    la.save(tmp_path / "la.png")
    opened = read_image(tmp_path / "la.png")
    assert opened.info.grey and np.array_equal(np.asarray(opened.alpha), np.asarray(la.getchannel("A")))
    seen = pixels(opened.for_method())  # on white: 40 where opaque, white where transparent
    alpha = pixels(la.getchannel("A")) / 255.0
    assert np.abs(seen[..., 0] - (40 * alpha + 255 * (1 - alpha))).max() <= 0.5


def palette_image() -> Image.Image:
    image = Image.new("P", (6, 4), 0)
    image.putpalette([250, 250, 250, 200, 30, 60, 20, 90, 180])
    image.paste(1, (0, 0, 3, 4))
    image.paste(2, (3, 0, 6, 2))
    return image


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_colours_with_and_without_transparency(tmp_path, suffix):
    palette_image().save(tmp_path / f"plain{suffix}")
    opened = read_image(tmp_path / f"plain{suffix}")
    assert opened.alpha is None and opened.colour.mode == "RGB"
    assert opened.colour.getpixel((1, 1)) == (200, 30, 60) and opened.colour.getpixel((4, 0)) == (20, 90, 180)
    assert opened.colour.getpixel((4, 3)) == (250, 250, 250)

    palette_image().save(tmp_path / f"clear{suffix}", transparency=0)
    opened = read_image(tmp_path / f"clear{suffix}")
    assert opened.info.alpha and opened.alpha.getpixel((4, 3)) == 0 and opened.alpha.getpixel((1, 1)) == 255
    assert opened.for_method().getpixel((1, 1)) == (200, 30, 60)


def test_cmyk_jpeg_colours_match_the_rgb_original(tmp_path):
    original = Image.new("RGB", (32, 16), (30, 110, 200))
    original.paste((220, 40, 30), (0, 0, 16, 16))
    cmyk = original.convert("CMYK")
    cmyk.save(tmp_path / "cmyk.jpg", quality=95)  # Pillow writes Adobe's inverted CMYK, as Photoshop does
    with Image.open(tmp_path / "cmyk.jpg") as raw:
        assert raw.mode == "CMYK" and raw.info.get("adobe")
    opened = read_image(tmp_path / "cmyk.jpg")
    centres = [(8, 8), (24, 8)]
    for x, y in centres:
        assert np.abs(pixels(opened.colour)[y, x] - pixels(original)[y, x]).max() <= 4


def test_ycbcr_tiff(tmp_path):
    original = Image.new("RGB", (8, 8), (200, 30, 60))
    original.convert("YCbCr").save(tmp_path / "ycc.tif")
    opened = read_image(tmp_path / "ycc.tif")
    assert opened.info.mode == "YCbCr" and np.abs(pixels(opened.colour)[2, 2] - (200, 30, 60)).max() <= 2


@pytest.mark.parametrize("space, colour", [(DISPLAY_P3, (200, 60, 40)), (ADOBE_RGB, (90, 170, 110))])
def test_wide_gamut_colours_are_converted_to_srgb(tmp_path, caplog, space, colour):
    Image.new("RGB", (8, 8), colour).save(tmp_path / "wide.png", icc_profile=icc_profile(space))
    with caplog.at_level(logging.INFO):
        opened = read_image(tmp_path / "wide.png")
    expected = expected_srgb(colour, space)
    assert np.abs(expected - colour).max() > 10  # reading the numbers as sRGB would shift the colour visibly
    assert np.abs(pixels(opened.colour)[4, 4] - expected).max() <= 1.5
    assert opened.info.colour_profile == f"{space[0]} converted to sRGB"
    assert f"converted from its ICC profile '{space[0]}' to sRGB" in caplog.text and "wide.png" in caplog.text


def test_display_p3_red_clips_to_srgb_red(tmp_path):
    Image.new("RGB", (4, 4), (255, 0, 0)).save(tmp_path / "red.png", icc_profile=icc_profile(DISPLAY_P3))
    assert read_image(tmp_path / "red.png").colour.getpixel((1, 1)) == (255, 0, 0)  # the most red sRGB has


def test_an_unreadable_profile_is_said_and_ignored(tmp_path, caplog):
    Image.new("RGB", (4, 4), (10, 20, 30)).save(tmp_path / "odd.png", icc_profile=b"not a profile" * 20)
    opened = read_image(tmp_path / "odd.png")
    assert opened.colour.getpixel((0, 0)) == (10, 20, 30) and opened.info.colour_profile.startswith("unreadable")
    assert "odd.png: its ICC profile cannot be read" in caplog.text


@pytest.mark.parametrize("suffix", [".gif", ".png", ".tif", ".webp"])
def test_animations_and_pages_give_their_first_frame_with_a_warning(tmp_path, caplog, suffix):
    frames = [Image.new("RGB", (8, 8), c) for c in ((220, 20, 20), (20, 220, 20), (20, 20, 220))]
    options = {"lossless": True} if suffix == ".webp" else {}
    frames[0].save(tmp_path / f"anim{suffix}", save_all=True, append_images=frames[1:], **options)
    with caplog.at_level(logging.WARNING):
        opened = read_image(tmp_path / f"anim{suffix}")
    assert np.abs(pixels(opened.colour)[4, 4] - (220, 20, 20)).max() <= 3
    assert opened.info.frames == 3
    assert f"anim{suffix} holds 3 frames (an animation or pages): only the first is used" in caplog.text


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_are_an_error_naming_the_file(tmp_path, fmt):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageInputError, match=r"cannot decode .*cut\..*: the file is truncated"):
        read_image(path)


def test_not_an_image_names_the_file(tmp_path):
    (tmp_path / "notes.heic").write_text("hello")
    with pytest.raises(ImageInputError, match=r"notes\.heic as an image: Pillow does not recognise it \(\.heic; "):
        read_image(tmp_path / "notes.heic")


# ------------------------------------------------------------------------------------------ writing
def test_join_alpha_undoes_the_white_composite(tmp_path):
    rng = np.random.default_rng(1)
    colour = Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    alpha = Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8))
    rgba = Image.merge("RGBA", (*colour.split(), alpha))
    rgba.save(tmp_path / "in.png")
    opened = read_image(tmp_path / "in.png")
    seen = opened.for_method()
    edited = seen.copy()  # the method turned a corner's colour black (as seen through its transparency)
    edited.paste(composite_over_white(Image.new("RGB", (30, 20)), opened.alpha).crop((0, 0, 10, 10)), (0, 0))
    joined = join_alpha(edited, opened.alpha, opened.colour)
    out = np.asarray(joined)
    assert np.array_equal(out[..., 3], np.asarray(alpha))
    assert np.array_equal(out[10:, :, :3], np.asarray(colour)[10:])  # untouched pixels: exactly the file's
    back = pixels(Image.alpha_composite(Image.new("RGBA", joined.size, "white"), joined).convert("RGB"))
    visible = np.asarray(alpha)[:10, :10] >= 8
    assert np.abs(back[:10, :10] - pixels(edited)[:10, :10])[visible].max() <= 1.0  # on white: the method's image
    assert out[:10, :10, :3][visible].max() <= 8  # and the colour under the transparency is black, not grey


@pytest.mark.parametrize("suffix, fmt", [(".png", "PNG"), (".webp", "WEBP"), (".tif", "TIFF"), (".TIFF", "TIFF")])
def test_alpha_is_kept_where_the_format_holds_it(tmp_path, suffix, fmt):
    colour = Image.new("RGB", (16, 16), (30, 60, 90))
    alpha = Image.new("L", (16, 16), 0)
    alpha.paste(255, (4, 4, 12, 12))
    Image.merge("RGBA", (*colour.split(), alpha)).save(tmp_path / "logo.png")
    opened = read_image(tmp_path / "logo.png")
    big = opened.for_method().resize((32, 32), Image.Resampling.BICUBIC)
    saved = save_atomically(big, tmp_path / f"out{suffix}", opened)
    with Image.open(tmp_path / f"out{suffix}") as written:
        assert written.format == fmt and written.mode == "RGBA" and saved.mode == "RGBA"
        assert written.getpixel((0, 0))[3] == 0 and written.getpixel((16, 16))[3] == 255
        assert np.abs(np.subtract(written.getpixel((16, 16))[:3], (30, 60, 90))).max() <= 3
    assert not list(tmp_path.glob(".*partial"))


def test_jpeg_output_composites_alpha_over_white_and_says_so(tmp_path, caplog):
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    opened = read_image(tmp_path / "clear.png")
    saved = save_atomically(opened.for_method(), tmp_path / "out.jpg", opened)
    with Image.open(tmp_path / "out.jpg") as written:
        assert written.format == "JPEG" and written.mode == "RGB" and min(written.getpixel((4, 4))) >= 250
        assert written.info.get("progression") is None
    assert "JPEG cannot store transparency" in saved.notes[0] and "clear.png are white" in caplog.text


def test_an_rgba_image_saved_as_jpeg_is_seen_on_white(tmp_path):
    save_atomically(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), tmp_path / "clear.jpg")
    with Image.open(tmp_path / "clear.jpg") as written:
        assert written.mode == "RGB" and min(written.getpixel((4, 4))) >= 250  # white, not black


def test_grey_stays_grey_and_16_bit_input_says_the_output_is_8_bit(tmp_path, caplog):
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(tmp_path / "grey16.png")
    opened = read_image(tmp_path / "grey16.png")
    saved = save_atomically(opened.for_method(), tmp_path / "out.png", opened)
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == "L" and written.getpixel((1, 1)) == round(40000 / 257)
    assert saved.notes == ["input was 16-bit; output is 8-bit because the upscale works on 8-bit images "
                           "(Text Restore's image interface, OCR, Keep Words and the diffusion stages)"]
    assert "out.png: input was 16-bit; output is 8-bit" in caplog.text


def test_jpeg_quality_is_95(tmp_path):
    noise = Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    save_atomically(noise, tmp_path / "q.jpeg")
    noise.save(tmp_path / "ref95.jpg", quality=95, subsampling=0)
    with Image.open(tmp_path / "q.jpeg") as written, Image.open(tmp_path / "ref95.jpg") as reference:
        assert written.quantization == reference.quantization


def test_unknown_output_extension_is_an_error(tmp_path):
    with pytest.raises(InvalidInputError, match=r"out\.bmp: unknown image extension '\.bmp'; use one of \.png"):
        save_atomically(Image.new("RGB", (4, 4)), tmp_path / "out.bmp")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------- the commands
def transparent_logo(path) -> Image.Image:
    """Dark words on a transparent background, with a soft edge: a logo exported from an editor."""
    from textimages import render_words

    words, _ = render_words([["OPEN"]], size=(150, 56), font_size=40, origin=(12, 8))
    grey = np.asarray(words.convert("L"), dtype=np.float64)
    ink = (grey.max() - grey) / (grey.max() - grey.min()) * 255.0  # the letters' coverage: paper 0, ink 255
    alpha = Image.fromarray((ink + 0.5).astype(np.uint8))
    logo = Image.merge("RGBA", (*Image.new("RGB", words.size, (20, 30, 120)).split(), alpha))
    logo.save(path)
    return logo


def test_upscale_keeps_a_logo_transparent(tmp_path, bicubic_file):
    import json

    from glyphsr_core.cli import main

    logo = transparent_logo(tmp_path / "logo.png")
    assert main(["upscale", str(tmp_path / "logo.png"), "-o", str(tmp_path / "logo_x4.webp"),
                 "--restorer", str(bicubic_file)]) == 0
    with Image.open(tmp_path / "logo_x4.webp") as out:
        assert out.mode == "RGBA" and out.size == (600, 224)
        values = np.asarray(out)
    for corner in (values[:8, :8], values[:8, -8:], values[-8:, :8], values[-8:, -8:]):
        assert corner[..., 3].max() == 0  # transparent stays transparent
    solid = np.asarray(logo.getchannel("A").filter(ImageFilter.MinFilter(3))) >= 250  # inside the strokes
    ys, xs = np.nonzero(solid)
    assert len(ys) > 20
    centres = values[ys * 4 + 2, xs * 4 + 2]  # the same spots in the x4 output
    assert centres[:, 3].min() >= 240  # the letters stay opaque ...
    assert np.abs(centres[:, :3].astype(int) - (20, 30, 120)).max() <= 12  # ... and keep their colour
    report = json.loads((tmp_path / "logo_x4_report.json").read_text())
    assert report["files"]["input"]["alpha"] is True and report["files"]["output"]["mode"] == "RGBA"
    assert "".join(r["text"] for r in report["ocr"]["regions"]) == "OPEN"  # OCR read the logo on white


def test_upscale_of_a_16_bit_image_says_its_output_is_8_bit(tmp_path, bicubic_file, capsys):
    import json

    from glyphsr_core.cli import main

    write_png16(tmp_path / "deep.png", np.full((24, 32, 3), 30000, dtype=np.uint16))
    assert main(["upscale", str(tmp_path / "deep.png"), "-o", str(tmp_path / "deep_x2.tif"), "--scale", "2",
                 "--restorer", str(bicubic_file)]) == 0
    report = json.loads((tmp_path / "deep_x2_report.json").read_text())
    assert report["files"]["input"]["bits"] == 16 and report["files"]["output"]["format"] == "TIFF"
    assert report["files"]["output"]["notes"][0].startswith("input was 16-bit; output is 8-bit because")
    with Image.open(tmp_path / "deep_x2.tif") as out:
        assert out.size == (64, 48) and np.abs(pixels(out)[24, 32] - 30000 // 256).max() <= 1


def test_an_unknown_output_extension_fails_before_any_work(tmp_path):
    from glyphsr_core.cli import main

    Image.new("RGB", (16, 16)).save(tmp_path / "in.png")
    missing = tmp_path / "no_such_model.safetensors"
    for command in (["upscale", str(tmp_path / "in.png")], ["keep-words", str(tmp_path / "in.png"), "--lq",
                                                            str(tmp_path / "in.png")]):
        with pytest.raises(InvalidInputError, match=r"out\.bmp: unknown image extension '\.bmp'"):
            from glyphsr_core.cli import build_parser

            args = build_parser().parse_args([*command, "-o", str(tmp_path / "out.bmp"), "--restorer", str(missing)])
            args._module.run(args)  # the restorer is missing too: the extension is checked first
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.bmp")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]
