"""Training configuration: a YAML or TOML file with the sections model / data / train / validation.

Every key has a default (the authors' hyper-parameters where they published them: AdamW lr 1e-6,
weight decay 1e-4, 5k warm-up, cosine to 70k steps, batch 12 at 512 px, grad clip 1.0); unknown
keys are errors, so a typo never silently trains with a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import defaults
from ..diffusion import SCHEDULERS
from ..errors import InputNotFoundError, InvalidInputError
from ..sampling.pingpong import PingPong, ScheduleError

MIXED_PRECISION = ("no", "fp16", "bf16")
PREDICTION_TYPES = ("epsilon", "v_prediction")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
PROMPT_WORDS = ("gt", "ocr")


class ConfigError(InvalidInputError):
    """The training config has an unknown key, a wrong type or a value out of range."""


@dataclass
class ModelConfig:
    base: str | None = None  # diffusers folder or single-file .safetensors
    base_config: str | None = None  # local diffusers folder for a single-file base
    scene_controlnet: str | None = None  # the frozen scene (SR / tile) ControlNet, .safetensors or folder
    tiny: str | None = None  # "sd15" / "sdxl": build random tiny models instead (CI, smoke tests)
    glyph_channel: bool = False  # text branch takes LQ + glyph map (zero-initialised extra hint channel)
    init_text_from: str | None = None  # optional TS bundle whose text branch to start from (fine-tuning)


@dataclass
class DataConfig:
    corpus: str = ""
    scales: list[int] = field(default_factory=lambda: [4, 8])
    resolution: int = 512
    validation_samples: int = 8  # held out: the last N samples of the corpus (never trained on)
    num_workers: int = 2


@dataclass
class TrainSection:
    output_dir: str = "runs/glyphsr_text_branch"
    seed: int = 0
    max_steps: int = 70000
    batch_size: int = 12  # per device
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-6
    weight_decay: float = 1e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    lr_scheduler: str = "cosine"
    lr_warmup_steps: int = 5000
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    prediction_type: str | None = None  # None: the base scheduler's (epsilon for SD1.5 / SDXL base)
    text_mask_weight: float = 1.0  # loss weight inside text masks (1 = plain MSE)
    beta: float = 0.5  # fusion weight of the text branch during training and in the saved bundle
    prompt_dropout: float = 0.05  # share of samples trained with an empty prompt (keeps CFG working)
    max_words: int = 24
    checkpointing_steps: int = 500
    checkpoints_total_limit: int | None = 3
    resume_from_checkpoint: str | None = None  # a checkpoint folder, or "latest"
    save_bundle_steps: int = 5000
    log_every: int = 10


@dataclass
class ValidationConfig:
    every: int = 1000  # 0 disables periodic validation
    samples: int = 4
    scale: int | None = None  # None: the first of data.scales
    steps: int = 20  # fewer than inference (defaults.STEPS): validation runs often
    cfg: float = defaults.CFG
    cfg_start: float = defaults.CFG_START
    schedule: str = defaults.SCHEDULE
    switch_at: float = defaults.SWITCH_AT
    pattern: str = defaults.PATTERN  # for schedule: pattern (S = scene step, T = text step)
    scheduler: str = "euler"
    prompt_words: str = "ocr"  # "ocr": words read from the LQ image (like inference); "gt": ground truth
    save_images: bool = True

    def pingpong(self) -> PingPong:
        """The validation sampler's ping-pong setting (checked when the config loads)."""
        return PingPong(schedule=self.schedule, switch_at=self.switch_at, pattern=self.pattern, cfg=self.cfg,
                        text_cfg=self.cfg, cfg_start=self.cfg_start)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainSection = field(default_factory=TrainSection)
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    def validate(self) -> "TrainConfig":
        m, d, t, v = self.model, self.data, self.train, self.validation
        if m.tiny is None and (not m.base or not m.scene_controlnet):
            raise ConfigError("model.base and model.scene_controlnet are required (or model.tiny: sd15 / sdxl)")
        if m.tiny not in (None, "sd15", "sdxl"):
            raise ConfigError(f"model.tiny must be sd15, sdxl or empty; got {m.tiny!r}")
        if not d.corpus:
            raise ConfigError("data.corpus is required: a folder made by `python -m glyphsr_core make-corpus`")
        if not d.scales or any(not isinstance(s, int) or s < 1 for s in d.scales):
            raise ConfigError(f"data.scales must be a list of whole numbers >= 1; got {d.scales!r}")
        if d.resolution < 8 or d.resolution % 8:
            raise ConfigError(f"data.resolution must be a multiple of 8; got {d.resolution}")
        _check_choice("train.mixed_precision", t.mixed_precision, MIXED_PRECISION)
        _check_choice("train.lr_scheduler", t.lr_scheduler, LR_SCHEDULERS)
        if t.prediction_type is not None:
            _check_choice("train.prediction_type", t.prediction_type, PREDICTION_TYPES)
        _check_choice("validation.prompt_words", v.prompt_words, PROMPT_WORDS)
        _check_choice("validation.scheduler", v.scheduler, SCHEDULERS)
        try:
            v.pingpong()
        except ScheduleError as exc:
            raise ConfigError(f"validation: {exc}") from None
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "checkpointing_steps",
                     "save_bundle_steps", "log_every"):
            if getattr(t, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1; got {getattr(t, name)}")
        if not 0.0 <= t.beta <= 1.0:
            raise ConfigError(f"train.beta must be in [0, 1]; got {t.beta}")
        if not 0.0 <= t.prompt_dropout <= 1.0:
            raise ConfigError(f"train.prompt_dropout must be in [0, 1]; got {t.prompt_dropout}")
        if t.text_mask_weight < 0 or t.learning_rate <= 0:
            raise ConfigError("train.text_mask_weight must be >= 0 and train.learning_rate > 0")
        if v.scale is not None and v.scale not in d.scales:
            raise ConfigError(f"validation.scale {v.scale} is not one of data.scales {d.scales}")
        return self


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _section(cls: type, raw: Any, name: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"section '{name}' must be a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) in '{name}': {', '.join(unknown)} (known: {', '.join(known)})")
    values = {}
    for key, value in raw.items():
        default = getattr(cls(), key)
        if isinstance(default, float) and isinstance(value, str):
            value = _float_from_text(value, f"{name}.{key}")  # PyYAML reads 1e-6 (no dot) as a string
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{name}.{key} must be true or false; got {value!r}")
        if isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
        elif isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(default, (int, float, str)) and not isinstance(default, bool) and value is not None \
                and not isinstance(value, type(default)):
            raise ConfigError(f"{name}.{key} must be a {type(default).__name__}; got {value!r}")
        values[key] = value
    return cls(**values)


def _float_from_text(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number; got {value!r}") from None


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    if not isinstance(raw, dict):
        raise ConfigError("the training config must be a mapping with sections model, data, train, validation")
    sections = {"model": ModelConfig, "data": DataConfig, "train": TrainSection, "validation": ValidationConfig}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)} (known: {', '.join(sections)})")
    return TrainConfig(**{name: _section(cls, raw.get(name), name) for name, cls in sections.items()}).validate()


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a .yaml/.yml/.toml config; `overrides` are `section.key=value` strings (YAML values).

    Relative paths in the file (corpus, models, output) are taken relative to the current directory.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"training config not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            raise ConfigError(f"{path}: TOML configs need Python 3.11+; use YAML instead") from None
        raw = tomllib.loads(text)
    elif path.suffix.lower() in (".yaml", ".yml"):
        raw = yaml.safe_load(text) or {}
    else:
        raise ConfigError(f"config {path} must be .yaml, .yml or .toml")
    for override in overrides or []:
        key, sep, value = override.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            raise ConfigError(f"override {override!r} must look like section.key=value (e.g. train.max_steps=100)")
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ConfigError(f"section '{section}' must be a mapping")
        raw[section][name] = yaml.safe_load(value)
    return config_from_dict(raw)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
