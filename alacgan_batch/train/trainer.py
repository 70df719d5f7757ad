"""The training loop of §4.2, its recipes, checkpoints and export.

One critic (D) step and one generator (G + own F1) step per batch (§3.2, §4.2), Adam(1e-4, betas 0.5/0.9)
with the learning rate dropped to 1e-5 at a recipe step. The fake image is computed once per batch: D
learns on it detached, then G learns through the freshly updated D (the paper's "simultaneously").

Run folder: config.json, metrics.jsonl, samples/step-*.png, checkpoints/step-*.pt (last K) and best.pt,
summary.json. Checkpoints hold G, D, F1 (if own), both optimizers and AMP scalers, the step, every rank's
python/numpy/torch RNG states and the data position, so `resume` continues bit-exactly on CPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import signal
import threading
import time
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError, InputError, ModelError, OutputError
from ..nets import Discriminator, Generator, GeneratorConfig, LineArtFeatures
from ..nets.generator import OFFICIAL_CARDINALITY, OFFICIAL_DEPTHS
from ..tomlfiles import read_named_toml
from ..writer import atomic_path, write_bytes_atomic, write_json_atomic, write_png
from . import losses
from .data import (
    HINT_XI_STD,
    SKETCH_JITTER,
    XDOG_SIGMAS,
    DataOptions,
    FolderDataset,
    SynthDataset,
    SynthPoolDataset,
    make_loader,
    stroke_hint,
    validation_frames,
)

RECIPE_DIR = Path(__file__).resolve().parents[2] / "training"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_VERSION = 1

# Bounds for settings whose range the method does not fix: a typo (1e9, 100000) stops here in one line instead
# of as a torch or numpy error, an out-of-memory or a run that trains nothing.
MAX_THREADS = max(256, os.cpu_count() or 1)  # torch intra-op threads (100000 ran out of memory creating them)
MAX_WORKERS = 256  # DataLoader processes
MAX_IMAGE_SIZE = 4096  # crops, synth and validation frames (the paper trains at 512)
MAX_DEPTH = 64  # ResNeXt blocks per sub-network (the official generator's deepest has 20)
MAX_LR = 1.0  # Adam's step per weight is about lr: above 1 the weights only diverge
# Hinted share of a hinted sample ~ 0.8 xi_std (0.4 % at the paper's 0.005); at 1 it is about half the pixels,
# and beyond, |xi| = |1 - |z| xi_std| grows again and the hints thin out: larger values are typos.
MAX_XI_STD = 1.0
MAX_XDOG_SIGMA = 10.0  # §4.1 uses 0.3-0.5 px; the blur at kappa * sigma already erases detail long before 10
SEED_LIMIT = 2**32  # np.random.seed takes seeds below 2^32


# --- configuration ------------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """A training recipe, fully resolved. Defaults are the paper's settings (§3.2, §4.1, §4.2)."""

    name: str = "custom"
    description: str = ""
    model_name: str = ""  # exported model name; "" -> "alacgan-<name>"
    # model (§3.3)
    ngf: int = 64
    ndf: int = 64
    features: str = "i2v"  # F1: "i2v" (Illustration2Vec conv6, §3.1, needs --i2v) or "lineart" (own, trained)
    feature_channels: int = 512
    feature_width: int = 32
    depths: tuple[int, ...] = OFFICIAL_DEPTHS
    cardinality: tuple[int, ...] = OFFICIAL_CARDINALITY
    # losses (§3.2)
    content: str = "vgg"  # "vgg" (eq. 4, needs --vgg16), "rgb_lab_l1" or "l1" (substitutes)
    adversarial: bool = True
    adv_weight: float = losses.ADV_WEIGHT
    gp_weight: float = losses.GP_WEIGHT
    drift_weight: float = losses.DRIFT_WEIGHT
    vgg16: str | None = None
    i2v: str | None = None
    # optimisation (§4.2)
    steps: int = 250_000
    batch_size: int = 4  # per process
    lr: float = 1e-4
    lr_drop_step: int = 125_000
    lr_after_drop: float = 1e-5
    # Also drop once the run's wall time reaches this many minutes (0 = off). Wall-clock dependent, so not
    # reproducible: only for time-boxed runs on shared machines (the starter); the step is checkpointed.
    lr_drop_minutes: float = 0.0
    beta1: float = 0.5
    beta2: float = 0.9
    amp: bool = True  # CUDA only: fp16 autocast + GradScaler
    # data (§3.1, §4.1, §4.2)
    image_size: int = 512
    hint_fraction: float = 0.5
    stroke_hint_prob: float = 0.0
    stroke_parts_all_prob: float = 0.5
    xi_std: float = HINT_XI_STD
    xdog_sigmas: tuple[float, ...] = XDOG_SIGMAS
    jitter: tuple[float, ...] = SKETCH_JITTER
    flip: bool = True
    synth_size: int = 512
    synth_xdog_prob: float = 0.0
    hint_spread: bool = False  # beyond the paper: stroke hints spread over their regions (hints.spread_strokes)
    # run
    seed: int = 0
    workers: int = 2
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    log_every: int = 50
    checkpoint_every: int = 1000
    keep_last: int = 3
    sample_every: int = 1000
    val_every: int = 1000
    val_frames: int = 8
    val_size: int = 256
    max_minutes: float = 0.0  # stop (and save) once the run's wall time (all sessions) reaches this; 0 = none
    # Start G (and the own F1) from another run's checkpoint (.pt) or run folder (its best.pt): a second
    # training stage with a fresh optimizer, schedule and step count. Ignored on --resume.
    init: str | None = None
    channels_last: bool = False  # NHWC activations: ~1.2x faster convolutions on CPU (oneDNN) and tensor cores

    def resolved_model_name(self) -> str:
        return self.model_name or f"alacgan-{self.name}"

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(ngf=self.ngf, feature_channels=self.feature_channels,
                               depths=tuple(self.depths), cardinality=tuple(self.cardinality))

    def data_options(self, rank: int = 0) -> DataOptions:
        return DataOptions(image_size=self.image_size, batch_size=self.batch_size, seed=self.seed, rank=rank,
                           hint_fraction=self.hint_fraction, stroke_hint_prob=self.stroke_hint_prob,
                           stroke_parts_all_prob=self.stroke_parts_all_prob, xi_std=self.xi_std,
                           xdog_sigmas=tuple(self.xdog_sigmas), jitter=(self.jitter[0], self.jitter[1]),
                           flip=self.flip, synth_size=self.synth_size, synth_xdog_prob=self.synth_xdog_prob,
                           hint_spread=self.hint_spread)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        return _build(data, "config")

    def validate(self) -> None:
        """Raise ConfigError for an inconsistent recipe; missing outside weights name their CLI flag."""
        if self.content == "vgg" and not self.vgg16:
            raise ConfigError(f"recipe {self.name!r} uses the VGG16 perceptual loss (§3.2): pass --vgg16 "
                              "vgg16-397923af.pth (or set content = \"rgb_lab_l1\")")
        if self.features == "i2v" and not self.i2v:
            raise ConfigError(f"recipe {self.name!r} uses Illustration2Vec local features (§3.1): pass --i2v "
                              "i2v.pth (or set features = \"lineart\")")
        for flag, value in (("--vgg16", self.vgg16 if self.content == "vgg" else None),
                            ("--i2v", self.i2v if self.features == "i2v" else None)):
            if value and not Path(value).is_file():
                raise ConfigError(f"{flag} file not found: {value}")
        if self.features not in ("i2v", "lineart"):
            raise ConfigError(f"features must be \"i2v\" or \"lineart\", not {self.features!r}")
        if self.features == "i2v" and self.feature_channels != 512:
            raise ConfigError("Illustration2Vec features have 512 channels: set feature_channels = 512")
        if self.content not in ("vgg", "rgb_lab_l1", "l1"):
            raise ConfigError(f"content must be vgg, rgb_lab_l1 or l1, not {self.content!r}")
        if len(self.depths) != 4 or len(self.cardinality) != 4:
            raise ConfigError("depths and cardinality need 4 entries (tunnel4..tunnel1)")
        if len(self.jitter) != 2 or len(self.xdog_sigmas) < 1:
            raise ConfigError("jitter needs two numbers (low, high) and xdog_sigmas at least one")
        self._check_ranges()
        for key in ("image_size", "val_size"):  # G halves its input four times
            if getattr(self, key) % 16:
                raise ConfigError(f"{key} must be a multiple of 16, got {getattr(self, key)}")
        if self.adversarial and self.image_size > 128 and self.image_size % 128:
            raise ConfigError(f"the critic needs image_size a multiple of 128 (or below 128), got {self.image_size}")
        for mult, groups in zip((8, 4, 2, 1), self.cardinality, strict=True):
            width = self.ngf * mult // 2  # ResNeXt bottleneck width of that sub-network
            if width < 1 or width % min(groups, width):
                raise ConfigError(f"ngf {self.ngf} does not split into cardinality {tuple(self.cardinality)}")
        if self.synth_size < self.image_size:
            raise ConfigError(f"synth_size ({self.synth_size}) must be >= image_size ({self.image_size})")
        if self.init and not Path(self.init).exists():
            raise ConfigError(f"init checkpoint not found: {self.init}")

    def _check_ranges(self) -> None:
        """Every numeric setting in its range: `--set lr=nan` or `jitter=2,1` stops here with the setting named,
        not as a torch or numpy error mid-run (an internal error)."""
        for key in _field_types():
            value = getattr(self, key)
            items = value if isinstance(value, tuple | list) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in items):
                raise ConfigError(f"{key} must be a finite number, not {_as_tuple(value)!r}")
        # key -> (is the value allowed, what the message says)
        ranges: dict[str, tuple[typing.Callable[[float], bool], str]] = {}
        for key in ("ngf", "ndf", "feature_channels", "feature_width", "batch_size", "log_every"):
            ranges[key] = (lambda v: v >= 1, ">= 1")
        for key in ("lr", "lr_after_drop"):
            ranges[key] = (lambda v: 0 < v <= MAX_LR, f"> 0 and <= {MAX_LR:g}")
        for key in ("steps", "lr_drop_step", "adv_weight", "gp_weight", "drift_weight", "lr_drop_minutes",
                    "max_minutes", "keep_last", "checkpoint_every", "sample_every", "val_every", "val_frames"):
            ranges[key] = (lambda v: v >= 0, ">= 0")  # 0 is off (or, for a loss weight, no such term)
        for key in ("hint_fraction", "stroke_hint_prob", "stroke_parts_all_prob", "synth_xdog_prob"):
            ranges[key] = (lambda v: 0 <= v <= 1, "in [0, 1] (a share of samples)")
        for key in ("beta1", "beta2"):
            ranges[key] = (lambda v: 0 <= v < 1, "in [0, 1) (Adam)")
        for key in ("image_size", "synth_size", "val_size"):
            ranges[key] = (lambda v: 16 <= v <= MAX_IMAGE_SIZE, f"from 16 to {MAX_IMAGE_SIZE}")
        ranges.update(
            xi_std=(lambda v: 0 <= v <= MAX_XI_STD, f"in [0, {MAX_XI_STD:g}] (the paper: {HINT_XI_STD})"),
            seed=(lambda v: 0 <= v < SEED_LIMIT, f"from 0 to {SEED_LIMIT - 1}"),
            workers=(lambda v: 0 <= v <= MAX_WORKERS, f"from 0 to {MAX_WORKERS}"),
            threads=(lambda v: 0 <= v <= MAX_THREADS, f"from 0 (torch's default) to {MAX_THREADS}"),
        )
        for key, (allowed, text) in ranges.items():
            if not allowed(getattr(self, key)):
                raise ConfigError(f"{key} must be {text}, not {getattr(self, key)}")
        if any(d < 0 or d > MAX_DEPTH for d in self.depths):
            raise ConfigError(f"depths must be whole numbers from 0 to {MAX_DEPTH}, not {_as_tuple(self.depths)}")
        if any(c < 1 for c in self.cardinality):
            raise ConfigError(f"cardinality must be whole numbers >= 1, not {_as_tuple(self.cardinality)}")
        if any(not 0 < s <= MAX_XDOG_SIGMA for s in self.xdog_sigmas):
            raise ConfigError(f"xdog_sigmas must be in (0, {MAX_XDOG_SIGMA:g}], not {_as_tuple(self.xdog_sigmas)}")
        low, high = self.jitter
        if not 0 <= low <= high <= 1:  # §4.2: x_hat = 1 - lambda (1 - x), lambda ~ U(low, high)
            raise ConfigError(f"jitter must be (low, high) with 0 <= low <= high <= 1 (the paper: "
                              f"{SKETCH_JITTER}), not {_as_tuple(self.jitter)}")


def _field_types() -> dict[str, object]:
    return typing.get_type_hints(TrainConfig)


def _parse_value(key: str, raw: object, kind: object) -> object:
    """A TOML value or an override string -> the field's type; a bad value is a ConfigError naming the key."""
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int:
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)
            return int(float(raw)) if isinstance(raw, str) and "e" in raw.lower() else int(raw)
        if kind is float:
            return float(raw)
        if kind is str:
            return str(raw)
        if kind == (str | None):
            return None if raw is None or str(raw).lower() in ("", "none", "null") else str(raw)
        if typing.get_origin(kind) is tuple:
            (item_kind, *_) = typing.get_args(kind)
            items = raw if isinstance(raw, list | tuple) else [s for s in str(raw).replace(" ", "").split(",") if s]
            return tuple(item_kind(float(v)) if item_kind is int else item_kind(v) for v in items)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int('1e400')
        raise ConfigError(f"setting {key!r}: cannot read {raw!r} as {getattr(kind, '__name__', kind)}") from exc
    raise ConfigError(f"setting {key!r} has an unsupported type {kind}")


def _build(values: dict, source: str) -> TrainConfig:
    types = _field_types()
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(types))})")
    return TrainConfig(**{k: _parse_value(k, v, types[k]) for k, v in values.items()})


def load_recipe(name_or_path: str, overrides: dict[str, str] | None = None) -> TrainConfig:
    """A recipe from training/<name>.toml or a .toml path, with `overrides` (strings) parsed to field types.

    TOML tables ([model], [loss], [optim], [data], [run]) only group keys; every key is a TrainConfig field.
    Unknown keys, in the file or the overrides, are ConfigErrors. Outside-weight checks happen in
    `TrainConfig.validate` (called here and by `train`), so `--vgg16`/`--i2v` may come as overrides.
    """
    path, raw = read_named_toml(name_or_path, RECIPE_DIR, "training recipe")
    flat: dict[str, object] = {}
    for key, value in raw.items():
        for sub_key, sub_value in (value.items() if isinstance(value, dict) else [(key, value)]):
            if sub_key in flat:
                raise ConfigError(f"recipe {path}: setting {sub_key!r} appears twice")
            flat[sub_key] = sub_value
    flat.setdefault("name", path.stem)
    config = _build(flat, f"recipe {path}")
    if overrides:
        types = _field_types()
        unknown = sorted(set(overrides) - set(types))
        if unknown:
            raise ConfigError(f"unknown training setting(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(types))})")
        for key, value in overrides.items():
            setattr(config, key, _parse_value(key, value, types[key]))
    config.validate()
    return config


# --- networks -----------------------------------------------------------------------------------

class ColorNet(nn.Module):
    """F1 and G as one module (one DDP wrapper): sketch, hint -> (colour image, F1 features)."""

    def __init__(self, generator: Generator, features: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.features = features

    def forward(self, sketch: torch.Tensor, hint: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(sketch)
        return self.generator(sketch, hint, features), features


class SizedCritic(nn.Module):
    """D(Y, F1(X)) for any crop: crops under 128 px (tests) are upsampled to the critic's smallest head."""

    def __init__(self, ndf: int, feature_channels: int, image_size: int) -> None:
        super().__init__()
        self.critic_size = max(128, image_size)
        self.net = Discriminator(ndf, feature_channels, self.critic_size)

    def forward(self, color: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        if color.shape[-1] != self.critic_size:
            color = F.interpolate(color, size=(self.critic_size, self.critic_size), mode="bilinear",
                                  align_corners=False)
            features = F.interpolate(features, size=(self.critic_size // 16,) * 2, mode="nearest")
        return self.net(color, features)


def build_networks(config: TrainConfig) -> tuple[Generator, nn.Module, SizedCritic | None, nn.Module | None]:
    """G, F1, D (None without the adversarial term), F2 (None unless the VGG content loss)."""
    generator = Generator(config.generator_config())
    if config.features == "lineart":
        features: nn.Module = LineArtFeatures(config.feature_channels, config.feature_width)
    else:
        from ..checkpoints import load_i2v

        features = load_i2v(config.i2v)  # frozen, pretrained (§3.1)
        features.requires_grad_(False)
    critic = SizedCritic(config.ndf, config.feature_channels, config.image_size) if config.adversarial else None
    vgg = None
    if config.content == "vgg":
        from ..checkpoints import load_vgg16

        vgg = load_vgg16(config.vgg16)
    return generator, features, critic, vgg


# --- distributed --------------------------------------------------------------------------------

@dataclass
class Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialised_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _resolve_device(device: str, local_rank: int) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda requested but no CUDA GPU is available")
        return torch.device("cuda", local_rank)
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r} (auto, cpu, cuda or cuda:N)") from exc


def init_distributed(device: str) -> Dist:
    """Single process, or DDP under torchrun (WORLD_SIZE/RANK/LOCAL_RANK): nccl on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _resolve_device(device, local_rank)
    if world <= 1:
        return Dist(device=dev)
    import torch.distributed as dist

    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    here = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
        here = True
    return Dist(world, rank, local_rank, dev, here)


def _all_any(flag: bool, dist_info: Dist) -> bool:
    """True on every rank if it is true on any (keeps stop decisions in lockstep)."""
    if dist_info.world == 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=dist_info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _gather(obj: object, dist_info: Dist) -> list:
    if dist_info.world == 1:
        return [obj]
    import torch.distributed as dist

    out: list = [None] * dist_info.world
    dist.all_gather_object(out, obj)
    return out


# --- RNG state ----------------------------------------------------------------------------------

def _rng_state(device: torch.device) -> dict:
    """Python, numpy and torch RNG states in a form torch.load(weights_only=True) accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _as_tuple(value: object) -> object:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value


# --- checkpoints --------------------------------------------------------------------------------

def _checkpoints(run_dir: Path) -> list[Path]:
    return sorted((Path(run_dir) / CHECKPOINT_DIR).glob("step-*.pt"))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = _checkpoints(run_dir)
    return found[-1] if found else None


# what resuming a run reads from its checkpoint (export reads "config", "generator" and "step")
RESUME_KEYS = ("generator", "opt_g", "scaler_g", "step", "rng")
# the recipe settings that shape the networks a checkpoint holds: it only loads into the same
ARCHITECTURE_KEYS = ("ngf", "features", "feature_channels", "depths", "cardinality")


def load_checkpoint(path: Path, required: tuple[str, ...] = ()) -> dict:
    """A training checkpoint's dict; an unreadable file, or one without the `required` entries, is a ModelError."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated, empty or foreign file; torch's message may be empty or many lines
        lines = str(exc).strip().splitlines()
        reason = lines[0][:120] if lines else type(exc).__name__
        raise ModelError(f"cannot read training checkpoint {path}: truncated or not a checkpoint ({reason})") \
            from exc
    if not isinstance(checkpoint, dict):
        raise ModelError(f"training checkpoint {path} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    missing = [key for key in required if key not in checkpoint]
    if missing:
        raise ModelError(f"{path} is not a training checkpoint of alacgan (no {', '.join(missing)})")
    return checkpoint


def _load_weights(module: nn.Module, state: object, what: str) -> None:
    """Strict load in one line (first few mismatched keys) instead of torch's error of one line per tensor."""
    from ..checkpoints import load_strict

    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{what} is not a state dict of tensors")
    load_strict(module, state, what)


def _check_architecture(checkpoint: dict, config: TrainConfig, path: Path) -> None:
    """The run's recipe must build the networks the checkpoint holds; name the first differing settings."""
    saved = checkpoint.get("config")
    if not isinstance(saved, dict):
        return  # no recipe recorded: the strict loads will tell
    ours = config.to_dict()
    keys = list(ARCHITECTURE_KEYS)
    if config.features == "lineart":
        keys.append("feature_width")  # the own F1 is in the checkpoint; Illustration2Vec is not
    if config.adversarial and "critic" in checkpoint:
        keys.append("ndf")  # a critic is only loaded when the recipe trains one
    differ = [f"{key} {_as_tuple(saved[key])!r} there, {_as_tuple(ours[key])!r} here"
              for key in keys if key in saved and _as_tuple(saved[key]) != _as_tuple(ours[key])]
    if differ:
        raise ModelError(f"training checkpoint {path} comes from a different recipe ({'; '.join(differ[:3])}): "
                         "resume with the run's recipe, or train into a new folder")


def _save_checkpoint(run_dir: Path, state: dict, step: int, keep_last: int, best: bool) -> Path:
    folder = Path(run_dir) / CHECKPOINT_DIR
    path = folder / f"step-{step:08d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    if best:
        with atomic_path(folder / "best.pt") as tmp:
            torch.save(state, tmp)
    for old in _checkpoints(run_dir)[:-max(1, keep_last)]:
        old.unlink(missing_ok=True)
    return path


# --- samples and validation ---------------------------------------------------------------------

def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """CxHxW in [-1,1] -> HxWx3 uint8."""
    image = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    return image.permute(1, 2, 0).numpy()


def hint_preview(hint: torch.Tensor, size: int) -> torch.Tensor:
    """4x(H/4)x(W/4) hint -> 3xHxW picture: hint colours on mid grey, nearest-upsampled."""
    mask = hint[3:4]
    picture = hint[:3] * mask + (1 - mask) * 0.0
    return F.interpolate(picture[None].float(), size=(size, size), mode="nearest")[0]


def sample_grid(batch: dict, fake: torch.Tensor, rows: int = 4) -> np.ndarray:
    """sketch | hints | output | target for the first `rows` samples, as one RGB uint8 image."""
    lines = []
    for i in range(min(rows, fake.shape[0])):
        size = fake.shape[-1]
        tiles = [batch["sketch"][i], hint_preview(batch["hint"][i].cpu(), size), fake[i], batch["color"][i]]
        lines.append(np.concatenate([_to_uint8(t.cpu()) for t in tiles], axis=1))
    return np.concatenate(lines, axis=0)


class Validator:
    """Held-out synth frames with stroke hints; metric = share of hinted area within deltaE 15 (higher is better)."""

    def __init__(self, count: int, size: int, hint_spread: bool = False) -> None:
        from .. import metrics

        self.metrics = metrics
        self.frames = validation_frames(count, size)
        sketches, hints = [], []
        for frame, rgba in self.frames:
            sketch = frame.lineart.astype(np.float32) / 255.0
            sketches.append(torch.from_numpy(sketch)[None] * 2 - 1)
            hints.append(stroke_hint(rgba[..., :3].astype(np.float32) / 255.0,
                                     (rgba[..., 3] > 127).astype(np.float32), sketch if hint_spread else None))
        self.sketch = torch.stack(sketches)
        # Measure paper pixels only: ink is drawn over the output at inference (metrics.non_line_mask).
        self.masks = [metrics.non_line_mask(frame.lineart) for frame, _ in self.frames]
        self.hint = torch.stack(hints)

    @torch.no_grad()
    def __call__(self, colornet: ColorNet, device: torch.device) -> dict:
        was_training = colornet.training
        colornet.eval()
        scores, region = [], []
        for i, (frame, rgba) in enumerate(self.frames):
            out, _ = colornet(self.sketch[i:i + 1].to(device), self.hint[i:i + 1].to(device))
            image = _to_uint8(out[0])
            scores.append(float(self.metrics.hint_region_accuracy(image, rgba, frame.labels, mask=self.masks[i])))
            region.append(float(self.metrics.region_accuracy(image, frame.part_colors, frame.labels,
                                                             mask=self.masks[i])))
        colornet.train(was_training)
        return {"val_hint_acc": float(np.mean(scores)), "val_region_acc": float(np.mean(region))}


# --- the loop -----------------------------------------------------------------------------------

class _StopFlag:
    """First Ctrl-C (SIGINT/SIGTERM) asks the loop to stop after the current step and save; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None  # the signal that asked, for the command's exit code
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _lr_at(config: TrainConfig, step: int, dropped_at: int | None = None) -> float:
    """§4.2: lr 1e-4, dropped to 1e-5 after `lr_drop_step` iterations (or at a time-triggered step)."""
    if step >= config.lr_drop_step or (dropped_at is not None and step >= dropped_at):
        return config.lr_after_drop
    return config.lr


def weights_fingerprint(*modules: nn.Module | None) -> str:
    """sha256 over the modules' tensors (in state-dict order): equal fingerprints = bitwise-equal weights."""
    digest = hashlib.sha256()
    for module in modules:
        if module is None:
            continue
        for key, tensor in module.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _write_jsonl(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def _keep_records_until(path: Path, step: int) -> None:
    """Drop the records of steps after `step` from a metrics file, atomically, before a session appends to it.

    A session stopped without saving (a second Ctrl-C, a crash, a kill) logged steps past its last checkpoint;
    the session that resumes from that checkpoint logs them again, so they would appear twice. A line torn by
    a kill goes too. A fresh run (`step` 0) in a folder without checkpoints starts an empty file.
    """
    if not path.is_file():
        return
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        later = isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] > step
        if not later:
            kept.append(line)
    if len(kept) != len(lines):
        write_bytes_atomic(path, "".join(f"{line}\n" for line in kept).encode())


class _Progress:
    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self.progress = None
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[speed]}"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[losses]}"))
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=start, speed="", losses="")

    def update(self, step: int, speed: float, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, speed=f"{speed:.2f} it/s", losses=text)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def train(config: TrainConfig, data: Path | str | None, out: Path, resume: bool = False, device: str = "auto",
          progress: bool = True) -> dict:
    """Train G (+ own F1) and D by §3.2/§4.2 into run folder `out`; returns a summary dict.

    `data`: None or "synth" = procedural frames from alacgan_batch.synth on the fly; a folder made by
    `data.build_synth_pool` (pre-rendered synth frames); else a folder made by `prepare_dataset`.
    `resume`: continue from the latest checkpoint in `out` (bit-exact on CPU).
    Ctrl-C saves a checkpoint at the end of the current step, then returns (summary["interrupted"]).
    """
    config.validate()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"training run folder {out} exists and is not a folder")
    dist_info = init_distributed(device)
    try:
        return _train(config, data, out, resume, dist_info, progress)
    finally:
        if dist_info.initialised_here:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(config: TrainConfig, data: Path | str | None, out: Path, resume: bool, dist_info: Dist,
           progress: bool) -> dict:
    dev = dist_info.device
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    checkpoint = None
    if resume:
        latest = latest_checkpoint(out)
        if latest is None:
            raise InputError(f"nothing to resume: no checkpoints in {out / CHECKPOINT_DIR}")
        checkpoint = load_checkpoint(latest, RESUME_KEYS)
        _check_architecture(checkpoint, config, latest)
    elif latest_checkpoint(out) is not None:
        raise InputError(f"{out} already holds a training run; pass --resume to continue it or choose a new folder")

    # Identical initial weights on every rank (DDP also broadcasts rank 0's).
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    generator, features, critic, vgg = build_networks(config)
    colornet = ColorNet(generator, features).to(dev)
    critic = critic.to(dev) if critic is not None else None
    vgg = vgg.to(dev) if vgg is not None else None
    g_params = [p for p in colornet.parameters() if p.requires_grad]
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(g_params, lr=config.lr, betas=betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=betas) if critic is not None else None
    use_amp = config.amp and dev.type == "cuda"
    scaler_g = torch.amp.GradScaler("cuda", enabled=use_amp)
    scaler_d = torch.amp.GradScaler("cuda", enabled=use_amp)
    # Per-rank stream for the critic's interpolation weights (eq. 8); data has its own index-seeded RNG.
    torch.manual_seed(config.seed * 1009 + dist_info.rank + 1)

    start_step, best, wall_before, skipped_total = 0, -math.inf, 0.0, 0
    lr_dropped_at: int | None = None
    if checkpoint is None and config.init:
        init_weights(colornet, config)
    if config.channels_last:
        colornet.to(memory_format=torch.channels_last)
    if checkpoint is not None:
        _load_weights(colornet.generator, checkpoint["generator"], f"generator of training checkpoint {latest}")
        if config.features == "lineart":
            _load_weights(colornet.features, checkpoint.get("features"),
                          f"line-art features of training checkpoint {latest}")
        if critic is not None:
            if "critic" not in checkpoint:
                raise ConfigError("checkpoint has no critic but the recipe is adversarial")
            _load_weights(critic.net, checkpoint["critic"], f"critic of training checkpoint {latest}")
        try:
            opt_g.load_state_dict(checkpoint["opt_g"])
            scaler_g.load_state_dict(checkpoint["scaler_g"])
            if critic is not None:
                opt_d.load_state_dict(checkpoint["opt_d"])
                scaler_d.load_state_dict(checkpoint["scaler_d"])
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:  # optimizer state of other networks
            reason = " ".join(str(exc).split())[:120] or type(exc).__name__
            raise ModelError(f"training checkpoint {latest}: optimizer state does not fit this recipe ({reason})") \
                from exc
        start_step = int(checkpoint["step"])
        best = float(checkpoint.get("best", -math.inf))
        wall_before = float(checkpoint.get("wall_s", 0.0))
        skipped_total = int(checkpoint.get("skipped", 0))
        lr_dropped_at = checkpoint.get("lr_dropped_at")
        states = checkpoint["rng"]
        if len(states) != dist_info.world:
            warnings.warn(f"checkpoint was written by {len(states)} processes, resuming with {dist_info.world}: "
                          "data continues exactly, RNG streams do not", stacklevel=2)
        _set_rng_state(states[dist_info.rank % len(states)], dev)

    model, disc = colornet, critic
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [dev.index] if dev.type == "cuda" else None
        model = DDP(colornet, device_ids=ids)
        disc = DDP(critic, device_ids=ids) if critic is not None else None

    if data is None or str(data) == "synth":
        dataset = SynthDataset(config.data_options(dist_info.rank))
        data_label = "synth (procedural, on the fly)"
    elif (Path(data) / "lineart.npy").is_file():
        dataset = SynthPoolDataset(Path(data), config.data_options(dist_info.rank))
        data_label = f"synth pool {Path(data)} ({dataset.count} pre-rendered procedural frames)"
    else:
        dataset = FolderDataset(Path(data), config.data_options(dist_info.rank))
        data_label = str(Path(data))  # as given: a model file must not carry this machine's paths
    loader = make_loader(dataset, config.data_options(dist_info.rank), start_step, dist_info.world,
                         config.workers)

    validator = None
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(exist_ok=True)
        _keep_records_until(out / "metrics.jsonl", start_step)  # this session logs the steps after start_step
        write_json_atomic(out / "config.json", {**config.to_dict(), "_run": {
            "data": data_label, "world_size": dist_info.world, "device": str(dev), "torch": torch.__version__,
            "amp": use_amp, "resumed_from_step": start_step if checkpoint else None}})
        if config.val_every > 0 and config.val_frames > 0:
            try:
                validator = Validator(config.val_frames, config.val_size, config.hint_spread)
            except ImportError:
                warnings.warn("synth/metrics not importable: validation metric (and best.pt) disabled", stacklevel=2)

    def state_dict(step: int, wall: float) -> dict:
        rng_states = _gather(_rng_state(dev), dist_info)
        state = {
            "version": CHECKPOINT_VERSION, "step": step, "config": config.to_dict(), "rng": rng_states,
            "generator": colornet.generator.state_dict(), "opt_g": opt_g.state_dict(),
            "scaler_g": scaler_g.state_dict(), "best": best, "wall_s": wall, "skipped": skipped_total,
            "lr_dropped_at": lr_dropped_at,
            "data_order": {"next_step": step, "samples_per_step": config.batch_size * dist_info.world,
                           "scheme": "sample index = (step * world + rank) * batch + slot; seeded by index"},
        }
        if config.features == "lineart":
            state["features"] = colornet.features.state_dict()
        if critic is not None:
            state.update(critic=critic.net.state_dict(), opt_d=opt_d.state_dict(), scaler_d=scaler_d.state_dict())
        return state

    def save(step: int, wall: float, is_best: bool = False) -> Path | None:
        state = state_dict(step, wall)  # every rank joins the RNG gather
        if dist_info.main:
            return _save_checkpoint(out, state, step, config.keep_last, is_best)
        return None

    metrics_path = out / "metrics.jsonl"
    bar = _Progress(progress and dist_info.main, config.steps, start_step)
    step = start_step
    interrupted = False
    stopped_by_time = False
    t0 = time.time()
    interval_start, interval_steps = time.time(), 0
    sums: dict[str, float] = {}
    last: dict[str, float] = {}
    last_ckpt: Path | None = None
    saved_step = start_step if checkpoint is not None else -1
    autocast = torch.autocast("cuda", dtype=torch.float16, enabled=use_amp) if dev.type == "cuda" else None
    colornet.train()
    iterator = iter(loader)
    with _StopFlag() as stop:
        try:
            while step < config.steps:
                try:
                    batch = next(iterator)
                except (RuntimeError, KeyboardInterrupt):
                    if stop.requested:  # Ctrl-C reached the DataLoader workers too
                        interrupted = True
                        break
                    raise
                if (config.lr_drop_minutes > 0 and lr_dropped_at is None
                        and _all_any((wall_before + time.time() - t0) / 60 >= config.lr_drop_minutes, dist_info)):
                    lr_dropped_at = step
                lr = _lr_at(config, step, lr_dropped_at)
                for opt in (opt_g, opt_d):
                    if opt is not None:
                        for group in opt.param_groups:
                            group["lr"] = lr
                logs, fake = _train_step(config, batch, model, disc, critic, vgg, opt_g, opt_d, scaler_g, scaler_d,
                                         dev, autocast)
                step += 1
                skipped_total += int(batch["skipped"])
                interval_steps += 1
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                if dist_info.main and config.sample_every > 0 and step % config.sample_every == 0:
                    write_png(out / "samples" / f"step-{step:08d}.png", sample_grid(batch, fake))
                if step % config.log_every == 0 or step == config.steps:
                    elapsed = time.time() - interval_start
                    last = {k: v / interval_steps for k, v in sums.items()}
                    record = {"step": step, "lr": lr, **last, "s_per_step": elapsed / interval_steps,
                              "images_per_s": interval_steps * config.batch_size * dist_info.world / elapsed,
                              "skipped_images": skipped_total, "wall_s": wall_before + time.time() - t0}
                    if dist_info.main:
                        _write_jsonl(metrics_path, record)
                    bar.update(step, interval_steps / elapsed, "  ".join(f"{k} {v:.4g}" for k, v in last.items()))
                    sums, interval_start, interval_steps = {}, time.time(), 0
                is_best = False
                if validator is not None and (step % config.val_every == 0 or step == config.steps):
                    scores = validator(colornet, dev)
                    is_best = scores["val_hint_acc"] > best
                    best = max(best, scores["val_hint_acc"])
                    _write_jsonl(metrics_path, {"step": step, **scores, "best": best})
                    last.update(scores)
                is_best = _all_any(is_best, dist_info)
                if (config.checkpoint_every > 0 and step % config.checkpoint_every == 0) or is_best:
                    last_ckpt = save(step, wall_before + time.time() - t0, is_best) or last_ckpt
                    saved_step = step
                # Wall time over all sessions of the run, like lr_drop_minutes.
                out_of_time = (config.max_minutes > 0
                               and (wall_before + time.time() - t0) / 60 >= config.max_minutes)
                if _all_any(stop.requested or out_of_time, dist_info):
                    interrupted = stop.requested
                    stopped_by_time = out_of_time and not stop.requested
                    break
        except KeyboardInterrupt:
            # A second Ctrl-C mid-step: the weights may be half-updated, so keep the last saved checkpoint.
            interrupted = True
            bar.close()
            raise
        bar.close()
        wall = wall_before + time.time() - t0
        if saved_step != step:
            last_ckpt = save(step, wall) or last_ckpt
    summary = {
        "run": str(out), "recipe": config.name, "start_step": start_step, "step": step, "steps": config.steps,
        "interrupted": interrupted, "stop_signal": stop.signum if interrupted else None,
        "stopped_by_time_limit": stopped_by_time, "lr_dropped_at": lr_dropped_at,
        "wall_s": round(wall, 1),
        "session_s_per_step": round((time.time() - t0) / max(1, step - start_step), 4),
        "last": last, "best_val_hint_acc": best if best > -math.inf else None, "skipped_images": skipped_total,
        "checkpoint": str(last_ckpt) if last_ckpt else None, "world_size": dist_info.world, "device": str(dev),
        "rank": dist_info.rank, "weights_sha256": weights_fingerprint(colornet, critic),
    }
    if dist_info.main:
        write_json_atomic(out / "summary.json", summary)
    return summary


def best_checkpoint(run_dir: Path) -> Path:
    """A run's best.pt (best validation score), else its latest checkpoint: what export and --init use."""
    best = run_dir / CHECKPOINT_DIR / "best.pt"
    found = best if best.is_file() else latest_checkpoint(run_dir)
    if found is None:
        raise InputError(f"no checkpoints in {run_dir / CHECKPOINT_DIR}")
    return found


def init_weights(colornet: ColorNet, config: TrainConfig) -> None:
    """Load G (and the own F1) from `config.init` (a run folder or a checkpoint); the networks must match."""
    path = Path(config.init)
    path = best_checkpoint(path) if path.is_dir() else path
    state = load_checkpoint(path, ("generator",))
    try:
        colornet.generator.load_state_dict(state["generator"])
        if config.features == "lineart":
            colornet.features.load_state_dict(state["features"])
    except (KeyError, RuntimeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise ConfigError(f"init checkpoint {path} does not fit this recipe's networks: {first}") from None


def _train_step(config: TrainConfig, batch: dict, model: nn.Module, disc: nn.Module | None,
                critic: SizedCritic | None, vgg: nn.Module | None, opt_g: torch.optim.Optimizer,
                opt_d: torch.optim.Optimizer | None, scaler_g: torch.amp.GradScaler,
                scaler_d: torch.amp.GradScaler, dev: torch.device, autocast: object) -> tuple[dict, torch.Tensor]:
    """One D step then one G step on the same fake batch (§4.2). Returns float logs and the fake images."""
    memory = torch.channels_last if config.channels_last else torch.contiguous_format
    sketch = batch["sketch"].to(dev, non_blocking=True, memory_format=memory)
    real = batch["color"].to(dev, non_blocking=True, memory_format=memory)
    hint = batch["hint"].to(dev, non_blocking=True, memory_format=memory)
    amp = autocast if autocast is not None else _null()
    with amp:
        fake, feats = model(sketch, hint)
    # The critic is conditioned on F1(X) (§3.1) but does not train F1: only G's loss does.
    cond = feats.detach()
    logs: dict[str, float] = {}
    if critic is not None:
        critic.requires_grad_(True)
        eps = torch.rand(real.shape[0], 1, 1, 1, device=dev)
        mixed = losses.interpolate(real, fake.float(), eps)
        with amp:
            # real, fake and interpolates in one critic call: one forward per step keeps DDP simple.
            scores = disc(torch.cat([real, fake.detach().to(real.dtype), mixed]), cond.repeat(3, 1, 1, 1))
        d_real, d_fake, d_mix = scores.float().chunk(3)
        penalty = losses.gradient_penalty_from(d_mix, mixed, config.gp_weight,
                                               grad_scale=scaler_d.get_scale() if scaler_d.is_enabled() else None)
        wdist = losses.critic_loss(d_fake, d_real)
        drift = losses.drift_penalty(d_real, config.drift_weight)
        loss_d = wdist + penalty + drift
        opt_d.zero_grad(set_to_none=True)
        scaler_d.scale(loss_d).backward()
        scaler_d.step(opt_d)
        scaler_d.update()
        critic.requires_grad_(False)  # G's step must not touch D
        logs.update(loss_d=loss_d.item(), w_dist=-wdist.item(), gp=penalty.item(), drift=drift.item())
    with amp:
        content = losses.content_loss(fake, real, config.content, vgg)
        loss_g = content
        if critic is not None:
            adv = losses.adversarial_loss(critic(fake, cond))  # unwrapped critic: no DDP reducer in G's step
            loss_g = content + config.adv_weight * adv
            logs["adv"] = adv.item()
    opt_g.zero_grad(set_to_none=True)
    scaler_g.scale(loss_g).backward()
    scaler_g.step(opt_g)
    scaler_g.update()
    logs.update(loss_g=loss_g.item(), content=content.item())
    if not all(math.isfinite(v) for v in logs.values()):
        raise FloatingPointError(f"training diverged: non-finite loss {logs}")
    return logs, fake.detach()


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# --- export -------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def export_run(run_dir: Path, out_dir: Path, name: str | None = None, overwrite: bool = False) -> Path:
    """Write a run's generator (+ own F1) with `save_model`, a MODEL_CARD.md and SHA256SUMS; returns the weights.

    Uses best.pt (best validation score) when the run has one, else its latest checkpoint. If the run
    folder holds quality.json (from benchmarks/quality.py --json) the card reports it, and NOTES.md
    (free text: hardware, history of the run) is copied into the card.
    """
    from ..checkpoints import ModelSpec, save_model

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    best_path = run_dir / CHECKPOINT_DIR / "best.pt"
    ckpt_path = best_checkpoint(run_dir)
    ckpt = load_checkpoint(ckpt_path, ("config", "generator", "step"))
    try:
        config = TrainConfig.from_dict(ckpt["config"])
        generator = Generator(config.generator_config())
        features = LineArtFeatures(config.feature_channels, config.feature_width) \
            if config.features == "lineart" else None
    except (ConfigError, AttributeError, TypeError, ValueError, RuntimeError) as exc:  # a damaged recipe record
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ModelError(f"training checkpoint {ckpt_path} records an unusable recipe ({reason})") from exc
    name = name or config.resolved_model_name()
    _load_weights(generator, ckpt["generator"], f"generator of training checkpoint {ckpt_path}")
    if features is not None:
        _load_weights(features, ckpt.get("features"), f"line-art features of training checkpoint {ckpt_path}")
    run_config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    quality = json.loads((run_dir / "quality.json").read_text()) if (run_dir / "quality.json").is_file() else None
    records = _read_jsonl(run_dir / "metrics.jsonl")
    train_records = [r for r in records if "loss_g" in r]
    val_records = [r for r in records if "val_hint_acc" in r]
    provenance = {
        "recipe": config.name, "checkpoint": ckpt_path.name, "step": int(ckpt["step"]),
        "run_steps": summary.get("step"), "wall_s": summary.get("wall_s", ckpt.get("wall_s")),
        "data": run_config.get("_run", {}).get("data"), "seed": config.seed,
        "content_loss": config.content, "adversarial": config.adversarial,
        "val_hint_acc": ckpt.get("best") if best_path.is_file() else None,
        "lr_dropped_at": ckpt.get("lr_dropped_at"),
        "initialised_from": config.init,  # a second stage names the run it started from
    }
    weights = out_dir / f"{name}.safetensors"
    existing = [p for p in (weights, weights.with_suffix(".json"), out_dir / "MODEL_CARD.md", out_dir / "SHA256SUMS")
                if p.exists()]
    if existing and not overwrite:  # e.g. the bundled model in model/, which the package loads by default
        raise OutputError(f"{existing[0]} exists; export into another folder or pass --overwrite to replace "
                          f"{', '.join(p.name for p in existing)}")
    save_model(weights, generator, features,
               ModelSpec(generator=config.generator_config(), features=config.features,
                         feature_width=config.feature_width, name=name,
                         # the frame scale it learned: synth frames, or the prepared short side (§4.2: 512)
                         extra={"training": provenance, "working_short_side": config.synth_size
                                if str(provenance["data"]).startswith("synth")  # on the fly or a pool
                                else config.image_size, "hint_spread": config.hint_spread}))
    digest = _sha256(weights)
    write_bytes_atomic(out_dir / "SHA256SUMS", f"{digest}  {weights.name}\n".encode())
    notes = (run_dir / "NOTES.md").read_text() if (run_dir / "NOTES.md").is_file() else ""
    card = _model_card(name, config, provenance, train_records, val_records, quality, generator, features, digest,
                       notes)
    write_bytes_atomic(out_dir / "MODEL_CARD.md", card.encode())
    return weights


def _model_card(name: str, config: TrainConfig, prov: dict, train_records: list[dict], val_records: list[dict],
                quality: dict | None, generator: nn.Module, features: nn.Module | None, digest: str,
                notes: str = "") -> str:
    n_g = sum(p.numel() for p in generator.parameters())
    n_f = sum(p.numel() for p in features.parameters()) if features is not None else 0
    wall = prov.get("wall_s")
    wall_text = f"{wall / 60:.1f} min" if isinstance(wall, int | float) else "unknown"
    first, final = (train_records[0], train_records[-1]) if train_records else ({}, {})
    speed = np.mean([r["s_per_step"] for r in train_records]) if train_records else float("nan")
    lines = [
        f"# {name}",
        "",
        "AlacGAN generator (Ci et al., ACM MM 2018) trained with alacgan-batch's implementation of the paper's",
        f"method (recipe `training/{config.name}.toml`). {config.description}".rstrip(),
        "",
        "## Model",
        f"- Generator: paper architecture (§3.3) at reduced width: ngf {config.ngf}, depths {tuple(config.depths)}, "
        f"cardinality {tuple(config.cardinality)}; {n_g / 1e6:.2f} M parameters.",
        (f"- Local features F1: own line-art network (`LineArtFeatures`, {config.feature_channels} channels, width "
         f"{config.feature_width}, {n_f / 1e6:.2f} M parameters), trained jointly; no Illustration2Vec weights."
         if config.features == "lineart" else "- Local features F1: Illustration2Vec conv6 (§3.1), not bundled."),
        f"- Weights: `{name}.safetensors` (+ `{name}.json`), sha256 `{digest}`.",
        "",
        "## Training",
        f"- Data: {prov.get('data')}; training synth seeds < 10^6." if "synth" in str(prov.get("data")) else
        f"- Data: {prov.get('data')}.",
        f"- Crops {config.image_size}x{config.image_size} (synth frames {config.synth_size}px), batch "
        f"{config.batch_size}, hints on {config.hint_fraction:.0%} of each batch: "
        f"{config.stroke_hint_prob:.0%} stroke-shaped (§3.4 encoding), the rest §3.1 random pixels "
        f"(xi ~ N(1, {config.xi_std}) truncated)"
        + ("; stroke hints also spread over their closed regions at weight 0.5 (`hint_spread`, beyond the "
           "paper: the engine does the same for this model)." if config.hint_spread else "."),
        f"- Content loss: `{config.content}`"
        + (" (VGG16 relu2_2 MSE, eq. 4)." if config.content == "vgg" else
           " (substitute for eq. 4 without VGG16 weights: L1 on RGB + L1 on CIELAB / 100)."),
        (f"- Adversarial: WGAN-GP critic (ndf {config.ndf}) conditioned on F1, lambda1 {config.adv_weight}, "
         f"lambda2 {config.gp_weight}, drift {config.drift_weight} (§3.2)." if config.adversarial
         else "- Adversarial term: off in this recipe (see recipe description)."),
        f"- Adam lr {config.lr} (betas {config.beta1}, {config.beta2}), dropped to {config.lr_after_drop} at step "
        f"{min(config.lr_drop_step, prov.get('lr_dropped_at') or config.lr_drop_step)}"
        + (f" (after {config.lr_drop_minutes:g} min of wall time)" if prov.get("lr_dropped_at") is not None else "")
        + "; one D and one G step per batch (§4.2)" + ("." if config.adversarial else ", here G steps only."),
        f"- Steps: {prov.get('run_steps')} trained, exported checkpoint `{prov.get('checkpoint')}` (step "
        f"{prov.get('step')}); wall time {wall_text}; {speed:.2f} s/step on average.",
    ]
    if prov.get("initialised_from"):
        lines.append(f"- A later stage: G and F1 started from `{prov['initialised_from']}` (a run's best "
                     "checkpoint, or the file named); steps and wall time above are this stage's alone.")
    if first:
        lines.append(f"- Loss: content {first.get('content', float('nan')):.4f} (first log) -> "
                     f"{final.get('content', float('nan')):.4f} (last log).")
    if val_records:
        lines.append(f"- Validation (held-out synth frames, stroke hints on every part): hinted-area share within "
                     f"deltaE 15 {val_records[-1]['val_hint_acc']:.3f} at the end, best "
                     f"{max(r['val_hint_acc'] for r in val_records):.3f}.")
    lines += ["", "## Measured quality"]
    if quality:
        lines += _quality_lines(quality)
    else:
        lines.append("Not measured yet: run `python benchmarks/quality.py --weights " + f"model/{name}.safetensors`.")
    steps_text = f"{prov.get('run_steps')} steps in {wall_text}"
    lines += [
        "",
        "## Known limits",
        "- Trained only on procedural cel frames (flat parts, two-tone shading, clean closed lines)."
        if "synth" in str(prov.get("data")) else f"- Trained only on {prov.get('data')}.",
        "  Real line art (open gaps, hatching, textures, faces) is out of distribution: expect muddier colours.",
        f"- {steps_text}: far from the paper's 250k iterations on real illustrations; colours of parts",
        "  without a hint (automatic colouring) are guesses.",
        "- Thin or small regions, and regions far from their stroke, may take a neighbour's colour."
        if not config.hint_spread else
        "- Strokes are spread over their closed regions (`hint_spread`): a region whose lines leave a gap wider\n"
        "  than about 6 px merges with its neighbour and may take that neighbour's stroke colour.",
    ]
    if notes:
        lines += ["", "## Notes", notes.strip()]
    lines.append("")
    return "\n".join(lines)


def _quality_lines(quality: dict) -> list[str]:
    s = quality.get("summary", quality)
    lines = [
        f"`benchmarks/quality.py` on {s.get('shots')} held-out procedural shots (seeds >= 10^9), "
        f"{s.get('keyframes')} keyframes at {s.get('size')}x{s.get('size')}:",
        "",
        "| metric | value |",
        "|---|---|",
        f"| hinted-region area within deltaE 15 of the hint | {s.get('hint_region_accuracy', float('nan')):.3f} |",
        f"| all-region area within deltaE 15 of ground truth | {s.get('region_accuracy', float('nan')):.3f} |",
    ]
    if "seconds_per_frame_512" in s:
        lines.append(f"| 512x512 inference, CPU ({s.get('threads')} threads) | {s['seconds_per_frame_512']:.2f} s |")
    goal = s.get("goal")
    if goal is not None:
        met = s.get("hint_region_accuracy", 0) >= goal
        lines += ["", f"Goal: >= {goal} hinted-region accuracy -- {'met' if met else 'NOT met'}."]
    return lines
