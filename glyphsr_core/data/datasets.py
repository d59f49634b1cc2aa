"""Benchmark datasets as images + ground-truth words with polygons, and their LQ inputs.

Supported annotation layouts (point `root` at the folder of one split for CTW1500 and CUTE80):

- **SVT** (Street View Text): `root/test.xml` (or `train.xml`):
  `<tagset><image><imageName>img/14_03.jpg</imageName> ... <taggedRectangles><taggedRectangle
  x= y= width= height=><tag>WORD</tag></taggedRectangle>...`; image paths relative to `root`.
- **SCUT-CTW1500**: images anywhere under `root`, one annotation file per image (same stem,
  an optional `gt_` prefix) anywhere under `root`, in any of its published layouts:
  the original `text_label_curve/*.txt` (32 numbers per line: xmin, ymin, xmax, ymax and 14
  offset points from (xmin, ymin); it has no transcriptions unless one follows as field 33),
  the later text-spotting `*.txt` (absolute x,y pairs then `####TEXT`), or the `*.xml` labels
  (`<image file=..><box left top width height><label>TEXT</label><segs>x,y,...</segs>`).
  `###` marks text to ignore.
- **CUTE80**: either per-image polygon files like the above (`x1,y1,...,xn,yn,####WORD` or
  `x1,y1,...,xn,yn,WORD`), or a word list for its cropped-word release (`<image path> <word>`
  per line in a single `.txt` under `root`; the whole crop is the word's polygon).
- **synthetic**: a corpus folder written by `make-corpus` (its stored LQ images are used).

Problems that affect single images (no annotation, no transcription, undecodable files) are
collected in `LoadedDataset.skipped`, never dropped silently; a root with nothing usable is an error.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..errors import InputNotFoundError, InvalidInputError
from .corpus import IMAGE_SUFFIXES, load_corpus
from .degrade import crop_to_multiple, degrade

DATASETS = ("synthetic", "svt", "ctw1500", "cute80")
IGNORE_TEXTS = {"###", "#", ""}

Point = tuple[float, float]


class DatasetError(InvalidInputError):
    """An annotation file is malformed or a dataset folder holds nothing usable."""


class ImageDecodeError(InvalidInputError):
    """An image file exists but cannot be decoded."""


@dataclass(frozen=True)
class GroundTruthWord:
    text: str
    polygon: tuple[Point, ...]
    ignore: bool = False


@dataclass(frozen=True)
class DatasetSample:
    id: str
    image_path: Path
    words: tuple[GroundTruthWord, ...]
    lq_paths: dict[int, Path] = field(default_factory=dict)

    @property
    def gt_words(self) -> list[str]:
        return [w.text for w in self.words if not w.ignore]

    def load_image(self) -> Image.Image:
        return load_rgb(self.image_path)


@dataclass
class LoadedDataset:
    name: str
    root: Path
    samples: list[DatasetSample]
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, item: str) -> None:
        self.skipped.setdefault(reason, []).append(item)


def load_rgb(path: Path) -> Image.Image:
    """Decode an image file as RGB; ImageDecodeError (a ValueError) when it cannot be read."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageDecodeError(f"cannot decode image {path}: {exc}") from exc


def _word(text: str | None, polygon: list[Point]) -> GroundTruthWord | None:
    if len(polygon) < 3:
        return None
    if text is None:
        return GroundTruthWord("", tuple(polygon), ignore=True)
    text = text.strip()
    return GroundTruthWord(text, tuple(polygon), ignore=text in IGNORE_TEXTS)


def _pairs(values: list[float]) -> list[Point]:
    return [(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]


_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def parse_polygon_line(line: str) -> tuple[list[Point], str | None]:
    """One line of a CTW1500 / CUTE80 polygon file -> (absolute polygon, text or None when unlabelled)."""
    line = line.strip().lstrip("\ufeff")
    text: str | None = None
    if "####" in line:
        coords_part, text = line.split("####", 1)
        fields = [f for f in coords_part.strip().rstrip(",").split(",") if f.strip()]
    else:
        fields = [f.strip() for f in line.split(",")]
    numbers: list[float] = []
    for index, value in enumerate(fields):
        if _NUMBER.match(value.strip()):
            numbers.append(float(value))
        else:
            if text is None:
                text = ",".join(fields[index:]).strip()
            break
    if len(fields) >= 32 and len(numbers) >= 32 and "####" not in line and len(numbers) == 32:
        # original CTW1500: circumscribed box, then 14 points as offsets from (xmin, ymin)
        xmin, ymin = numbers[0], numbers[1]
        return [(xmin + dx, ymin + dy) for dx, dy in _pairs(numbers[4:32])], text
    if len(numbers) % 2:
        raise DatasetError(f"odd number of coordinates ({len(numbers)}) in line {line[:80]!r}")
    return _pairs(numbers), text


def parse_polygon_file(path: Path) -> list[GroundTruthWord]:
    words = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8-sig", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            polygon, text = parse_polygon_line(line)
        except DatasetError as exc:
            raise DatasetError(f"{path} line {line_no}: {exc}") from exc
        word = _word(text, polygon)
        if word is not None:
            words.append(word)
    return words


def parse_ctw1500_xml(path: Path) -> dict[str, list[GroundTruthWord]]:
    """CTW1500 XML labels: {image file name: words}."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DatasetError(f"{path}: not valid XML ({exc})") from exc
    out: dict[str, list[GroundTruthWord]] = {}
    for image in root.iter("image"):
        words = []
        for box in image.iter("box"):
            label = box.findtext("label")
            segs = box.findtext("segs")
            if segs and segs.strip():
                polygon = _pairs([float(v) for v in segs.replace(" ", "").split(",") if v])
            else:
                left, top = float(box.get("left", 0)), float(box.get("top", 0))
                width, height = float(box.get("width", 0)), float(box.get("height", 0))
                polygon = [(left, top), (left + width, top), (left + width, top + height), (left, top + height)]
            word = _word(label, polygon)
            if word is not None:
                words.append(word)
        out[image.get("file", path.stem)] = words
    return out


# ---------------------------------------------------------------------------------------------
# loaders


def _require_dir(root: Path, name: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputNotFoundError(f"{name} folder not found: {root}")
    return root


def _images_by_stem(root: Path) -> dict[str, Path]:
    images: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            images.setdefault(path.stem, path)
    return images


def _label_key(path: Path) -> str:
    stem = path.stem
    return stem[3:] if stem.startswith("gt_") else stem


def _finish(dataset: LoadedDataset, sample_id: str, image: Path, words: list[GroundTruthWord]) -> None:
    if not any(not w.ignore for w in words):
        dataset.skip("no labelled words", sample_id)
        return
    dataset.samples.append(DatasetSample(sample_id, image, tuple(words)))


def _load_per_image(name: str, root: Path) -> LoadedDataset:
    """Images paired with same-stem .txt / .xml annotation files anywhere under root."""
    dataset = LoadedDataset(name, root, [])
    images = _images_by_stem(root)
    labels: dict[str, list[GroundTruthWord]] = {}
    for path in sorted(root.rglob("*")):
        suffix = path.suffix.lower()
        if not path.is_file() or suffix not in (".txt", ".xml"):
            continue
        if suffix == ".xml":
            for file_name, words in parse_ctw1500_xml(path).items():
                labels[Path(file_name).stem] = words
        elif _label_key(path) in images:
            labels[_label_key(path)] = parse_polygon_file(path)
    if not labels:
        raise InputNotFoundError(
            f"no {name} annotations under {root}: expected one .txt (or .xml) per image with the image's name "
            f"(optionally 'gt_' + name), e.g. 1001.jpg + 1001.txt")
    for stem, image in images.items():
        if stem not in labels:
            dataset.skip("no annotation file", str(image))
            continue
        _finish(dataset, stem, image, labels[stem])
    for stem in labels:
        if stem not in images:
            dataset.skip("annotation without image", stem)
    return dataset


def load_svt(root: Path, split: str = "test") -> LoadedDataset:
    root = _require_dir(root, "SVT")
    xml_path = root / f"{split}.xml"
    if not xml_path.is_file():
        raise InputNotFoundError(f"SVT annotation {xml_path} not found (the SVT release has train.xml and test.xml)")
    try:
        tree = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise DatasetError(f"{xml_path}: not valid XML ({exc})") from exc
    dataset = LoadedDataset("svt", root, [])
    for image in tree.iter("image"):
        name = (image.findtext("imageName") or "").strip()
        if not name:
            raise DatasetError(f"{xml_path}: an <image> has no <imageName>")
        words = []
        for rect in image.iter("taggedRectangle"):
            try:
                x, y = float(rect.get("x")), float(rect.get("y"))  # type: ignore[arg-type]
                w, h = float(rect.get("width")), float(rect.get("height"))  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                raise DatasetError(f"{xml_path}: taggedRectangle of {name} needs numeric x, y, width, height") from exc
            word = _word(rect.findtext("tag") or "", [(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
            if word is not None:
                words.append(word)
        path = root / name
        if not path.is_file():
            dataset.skip("image file missing", str(path))
            continue
        _finish(dataset, Path(name).stem, path, words)
    return dataset


def load_ctw1500(root: Path) -> LoadedDataset:
    return _load_per_image("ctw1500", _require_dir(root, "SCUT-CTW1500"))


def _load_word_list(root: Path) -> LoadedDataset | None:
    """CUTE80 cropped-word release: `<image path> <word>` lines in a .txt under root."""
    for path in sorted(root.rglob("*.txt")):
        entries = []
        for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
            parts = line.strip().split(maxsplit=1)
            if len(parts) == 2 and Path(parts[0]).suffix.lower() in IMAGE_SUFFIXES:
                entries.append((parts[0], parts[1].strip().strip('"')))
        if not entries:
            continue
        dataset = LoadedDataset("cute80", root, [])
        for relative, text in entries:
            image = next((p for p in (path.parent / relative, root / relative) if p.is_file()), None)
            if image is None:
                dataset.skip("image file missing", relative)
                continue
            try:
                with Image.open(image) as opened:
                    width, height = opened.size
            except (UnidentifiedImageError, OSError) as exc:
                dataset.skip("undecodable image", f"{relative}: {exc}")
                continue
            _finish(dataset, Path(relative).stem, image,
                    [GroundTruthWord(text, ((0, 0), (width, 0), (width, height), (0, height)), text in IGNORE_TEXTS)])
        return dataset
    return None


def load_cute80(root: Path) -> LoadedDataset:
    root = _require_dir(root, "CUTE80")
    try:
        return _load_per_image("cute80", root)
    except FileNotFoundError:
        listed = _load_word_list(root)
        if listed is None:
            raise InputNotFoundError(
                f"no CUTE80 annotations under {root}: expected per-image polygon files (1.jpg + 1.txt with "
                f"'x1,y1,...,xn,yn,####WORD' lines) or a word list ('<image path> <word>' per line)") from None
        return listed


def load_synthetic(root: Path) -> LoadedDataset:
    dataset = LoadedDataset("synthetic", Path(root), [])
    for sample in load_corpus(root):
        words = [GroundTruthWord(w.text, tuple(w.quad)) for w in sample.words]
        if not words:
            dataset.skip("no labelled words", sample.id)
            continue
        dataset.samples.append(DatasetSample(sample.id, sample.hq_path, tuple(words), dict(sample.lq_paths)))
    return dataset


def load_dataset(name: str, root: str | Path, split: str = "test") -> LoadedDataset:
    """Load one of DATASETS from `root` (`split` picks SVT's train/test XML)."""
    root = Path(root)
    if name == "svt":
        return load_svt(root, split)
    if name == "ctw1500":
        return load_ctw1500(root)
    if name == "cute80":
        return load_cute80(root)
    if name == "synthetic":
        return load_synthetic(root)
    raise InvalidInputError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")


# ---------------------------------------------------------------------------------------------
# LQ inputs


def sample_seed(sample_id: str, seed: int = 0) -> int:
    """A per-image degradation seed that does not depend on dataset order."""
    return (zlib.crc32(sample_id.encode("utf-8")) ^ int(seed)) & 0x7FFFFFFF


def make_lq(hq: Image.Image, scale: int, mode: str = "bicubic", seed: int = 0) -> tuple[Image.Image, Image.Image, dict[str, Any]]:
    """(HQ cropped to a multiple of `scale`, its LQ input, the degradation parameters)."""
    cropped = crop_to_multiple(hq, scale)
    lq, params = degrade(cropped, scale, seed, mode)
    return cropped, lq, params


def lq_for(sample: DatasetSample, hq: Image.Image, scale: int, mode: str, seed: int) -> tuple[Image.Image, Image.Image, dict[str, Any] | None]:
    """The sample's LQ input: the stored one (synthetic corpus) when it exists at `scale`, else made now."""
    stored = sample.lq_paths.get(int(scale))
    cropped = crop_to_multiple(hq, scale)
    if stored is not None:
        lq = load_rgb(stored)
        if (lq.width * scale, lq.height * scale) == cropped.size:
            return cropped, lq, None
    cropped, lq, params = make_lq(hq, scale, mode, sample_seed(sample.id, seed))
    return cropped, lq, params
