"""Wide-gamut RGB ICC profiles for tests (Pillow's ImageCms builds only sRGB, LAB and XYZ): a v2
matrix/TRC display profile written byte by byte, which LittleCMS reads like any camera's or editor's.

Also the colour maths to check a conversion against: RGB -> XYZ from the primaries, white D65.
"""

from __future__ import annotations

import struct

import numpy as np

D65 = (0.3127, 0.3290)
D50_XYZ = np.array([0.9642, 1.0, 0.8249])
#: (name, red, green, blue primaries as xy, transfer: "srgb" or a gamma)
DISPLAY_P3 = ("Display P3 (test)", (0.680, 0.320), (0.265, 0.690), (0.150, 0.060), "srgb")
ADOBE_RGB = ("Adobe RGB (1998) (test)", (0.640, 0.330), (0.210, 0.710), (0.150, 0.060), 563 / 256)
SRGB = ("sRGB primaries", (0.640, 0.330), (0.300, 0.600), (0.150, 0.060), "srgb")


def rgb_to_xyz(red, green, blue, white=D65) -> np.ndarray:
    """Linear RGB -> XYZ matrix from the primaries' and the white's chromaticities (Y of white = 1)."""
    def xyz(xy):
        return np.array([xy[0] / xy[1], 1.0, (1 - xy[0] - xy[1]) / xy[1]])

    primaries = np.stack([xyz(red), xyz(green), xyz(blue)], axis=1)
    return primaries * np.linalg.solve(primaries, xyz(white))


def decode(values: np.ndarray, transfer) -> np.ndarray:
    """8-bit code values -> linear light."""
    v = np.asarray(values, dtype=np.float64) / 255.0
    if transfer == "srgb":
        return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return v ** transfer


def encode_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB 8-bit code values (clipped to the gamut)."""
    v = np.clip(linear, 0.0, 1.0)
    return 255.0 * np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)


def expected_srgb(rgb: tuple[int, int, int], space) -> np.ndarray:
    """What a colour of `space` looks like in sRGB (relative colorimetric: same white)."""
    _, red, green, blue, transfer = space
    xyz = rgb_to_xyz(red, green, blue) @ decode(rgb, transfer)
    return encode_srgb(np.linalg.solve(rgb_to_xyz(*SRGB[1:4]), xyz))


def _s15(value: float) -> bytes:
    return struct.pack(">i", int(round(value * 65536)))


def _xyz_tag(xyz) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(_s15(v) for v in xyz)


def _curve_tag(transfer) -> bytes:
    if transfer == "srgb":  # parametric type 3: the sRGB curve
        params = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
        return b"para" + bytes(4) + struct.pack(">HH", 3, 0) + b"".join(_s15(p) for p in params)
    return b"curv" + bytes(4) + struct.pack(">IH", 1, int(round(transfer * 256))) + bytes(2)


def _text_tags(name: str) -> tuple[bytes, bytes]:
    ascii_ = name.encode("ascii") + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(4 + 4 + 2 + 1 + 67)
    return desc, b"text" + bytes(4) + b"no copyright, test profile\0"


def icc_profile(space) -> bytes:
    """An ICC v2 RGB display profile of `space` (e.g. DISPLAY_P3): colorants adapted to D50 with Bradford."""
    name, red, green, blue, transfer = space
    bradford = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    white = rgb_to_xyz(red, green, blue) @ np.ones(3)
    adapt = np.linalg.inv(bradford) @ np.diag((bradford @ D50_XYZ) / (bradford @ white)) @ bradford
    colorants = adapt @ rgb_to_xyz(red, green, blue)
    desc, cprt = _text_tags(name)
    curve = _curve_tag(transfer)
    tags = [(b"desc", desc), (b"cprt", cprt), (b"wtpt", _xyz_tag(D50_XYZ)),
            (b"rXYZ", _xyz_tag(colorants[:, 0])), (b"gXYZ", _xyz_tag(colorants[:, 1])),
            (b"bXYZ", _xyz_tag(colorants[:, 2])), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + bytes(12) + b"acsp"
              + bytes(4 + 4 + 4 + 4 + 8 + 4) + b"".join(_s15(v) for v in D50_XYZ) + bytes(4 + 16 + 28))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data
