"""The `train-restorer` config: a YAML file checked whole before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InputNotFoundError, InvalidInputError

DEGRADATIONS = ("bicubic", "realistic", "paper")


@dataclass(frozen=True)
class CorpusSpec:
    """A synthetic corpus the run trains on; made with `make-corpus` settings when missing."""

    out: Path
    n: int
    seed: int
    degradation: str = "bicubic"
    weight: float = 1.0


@dataclass(frozen=True)
class RestorerTrainConfig:
    output: Path
    corpora: tuple[CorpusSpec, ...]
    validation: CorpusSpec
    fonts: Path | None = None       # extra font folder; system fonts are never used (reproducible)
    size: int = 512
    seed: int = 0
    num_feat: int = 64
    num_conv: int = 8
    iterations: int = 20000
    patches: int = 12               # LR patches per step for the pixel losses
    patch_size: int = 32            # LR pixels
    words: int = 6                  # word crops per step for the recogniser loss
    x8_fraction: float = 0.35       # steps whose input is the x8 LQ enlarged 2x with bicubic
    lr: float = 2e-4
    lr_schedule: str = "constant"   # "cosine": decays to lr / 10 at the last iteration
    ema: float = 0.0                # weight EMA decay (0 = off); validation and the shipped file use the EMA
    text_mask_weight: float = 3.0
    background: str = "bicubic"     # target outside the (dilated) word boxes: "bicubic" (stay put) or "hq"
    edge_weight: float = 0.5
    ctc_weight: float = 0.01
    word_every: int = 1             # the word-crop losses (pixel + recogniser) run every N steps: they cost 2/3 of a step
    blend_with_bicubic: float = 1.0  # the shipped file: alpha * trained + (1 - alpha) * bicubic (1 = as trained)
    checkpoint_every: int = 200
    validate_every: int = 500
    validate_images: int = 20
    device: str = "cpu"             # "cuda" or "auto" (cuda when present) for long runs; validation OCR stays on the CPU
    teacher: Path | None = None     # distil: a restorer file whose output (edge-replicated borders) replaces HQ as the target
    grid_weight: float = 0.0        # penalty on per-phase offsets of the output's high-pass vs bicubic's (the period-4 grid)
    context: int = 0                # LR pixels of real context around each patch, run but left out of the losses
    last_step: int | None = None    # stop after this step although the rate schedule spans `iterations` (the file is written there)
    head_refit: float = 0.0         # > 0: after the last step, refit the last conv (ridge, closed form): bicubic on smooth
                                    # synthetic images with this weight, the net's own output on training images (weight 1)


def _corpus(entry: Any, where: str, base: Path) -> CorpusSpec:
    if not isinstance(entry, dict) or not {"out", "n", "seed"} <= set(entry):
        raise InvalidInputError(f"{where}: expected a mapping with out, n, seed (and optional degradation, weight)")
    spec = CorpusSpec(out=(base / str(entry["out"])), n=int(entry["n"]), seed=int(entry["seed"]),
                      degradation=str(entry.get("degradation", "bicubic")), weight=float(entry.get("weight", 1.0)))
    if spec.degradation not in DEGRADATIONS:
        raise InvalidInputError(f"{where}: degradation must be one of {', '.join(DEGRADATIONS)}, got {spec.degradation!r}")
    if spec.n < 1 or spec.weight <= 0:
        raise InvalidInputError(f"{where}: n must be >= 1 and weight > 0")
    return spec


def load_restorer_config(path: str | Path, overrides: dict[str, Any] | None = None,
                         base: Path | None = None) -> RestorerTrainConfig:
    """Read and check a config; relative paths are taken from `base` (default: the current folder)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"config not found: {path}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{path}: expected a mapping at the top level")
    raw.update(overrides or {})
    base = base or Path.cwd()
    known = {f.name for f in fields(RestorerTrainConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidInputError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for key in ("output", "corpora", "validation"):
        if key not in raw:
            raise InvalidInputError(f"{path}: missing '{key}'")
    if not isinstance(raw["corpora"], list) or not raw["corpora"]:
        raise InvalidInputError(f"{path}: 'corpora' must be a non-empty list")
    values = dict(raw)
    values["output"] = base / str(raw["output"])
    values["corpora"] = tuple(_corpus(e, f"{path}: corpora[{i}]", base) for i, e in enumerate(raw["corpora"]))
    values["validation"] = _corpus(raw["validation"], f"{path}: validation", base)
    values["fonts"] = (base / str(raw["fonts"])) if raw.get("fonts") else None
    if raw.get("teacher"):
        teacher = Path(str(raw["teacher"]))
        values["teacher"] = teacher if teacher.is_absolute() else base / teacher
    config = RestorerTrainConfig(**values)
    positive = ("iterations", "patches", "patch_size", "checkpoint_every", "validate_every", "validate_images", "num_feat", "num_conv",
                "word_every")
    for name in positive:
        if int(getattr(config, name)) < 1:
            raise InvalidInputError(f"{path}: {name} must be at least 1, got {getattr(config, name)}")
    if config.words < 0 or not 0.0 <= config.x8_fraction <= 1.0 or config.lr <= 0:
        raise InvalidInputError(f"{path}: words must be >= 0, x8_fraction in 0..1 and lr > 0")
    if not 0.0 < config.blend_with_bicubic <= 1.0:
        raise InvalidInputError(f"{path}: blend_with_bicubic must be in (0, 1], got {config.blend_with_bicubic}")
    if config.lr_schedule not in ("constant", "cosine"):
        raise InvalidInputError(f"{path}: lr_schedule must be 'constant' or 'cosine', got {config.lr_schedule!r}")
    if not 0.0 <= config.ema < 1.0:
        raise InvalidInputError(f"{path}: ema must be in [0, 1), got {config.ema}")
    if config.device not in ("cpu", "cuda", "auto"):
        raise InvalidInputError(f"{path}: device must be 'cpu', 'cuda' or 'auto', got {config.device!r}")
    if config.background not in ("bicubic", "hq"):
        raise InvalidInputError(f"{path}: background must be 'bicubic' or 'hq', got {config.background!r}")
    if config.last_step is not None and not 1 <= config.last_step <= config.iterations:
        raise InvalidInputError(f"{path}: last_step must be between 1 and iterations ({config.iterations}), got {config.last_step}")
    if config.grid_weight < 0 or config.context < 0 or config.head_refit < 0:
        raise InvalidInputError(f"{path}: grid_weight, context and head_refit must be >= 0")
    if config.size % 8:
        raise InvalidInputError(f"{path}: size must be a multiple of 8, got {config.size}")
    return config
