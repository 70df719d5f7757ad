"""Model files: the official AlacGAN layout <-> ours, strict and safe loading, and where files are found.

Official files (github.com/orashi/AlacGAN, see the README):
- generator: a bare NetG state dict or the training dict with `state_dictG`; keys may carry `module.`
  (train.py wraps the nets in DataParallel). Our module names are the official ones, so
  `generator_filter_fn` only unwraps the container and strips the prefix.
- `i2v.pth`: Illustration2Vec as a 30-child nn.Sequential (`<index>.weight`); F1 keeps children 0..14.
- `vgg16-397923af.pth`: torchvision's VGG16; F2 keeps `features.0..8`.

The project's own format is `<name>.safetensors` (tensors `generator.*`, and `features.*` when the
model has its own F1) beside `<name>.json` (architecture and provenance). `.pth` files are opened with
`torch.load(weights_only=True)`: no pickled code runs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import ModelError
from .nets import Generator, GeneratorConfig, Illustration2VecFeatures, LineArtFeatures, VGG16Features
from .nets.generator import OFFICIAL_CARDINALITY, OFFICIAL_DEPTHS
from .writer import atomic_path, write_json_atomic

FORMAT_NAME = "alacgan-batch"
FORMAT_VERSION = 1
I2V_KEPT_CHILDREN = 15  # F1 = Illustration2Vec children 0..14, ending at the ReLU of the 6th conv (§3.1)
VGG_KEPT_CHILDREN = 9  # F2 = VGG16 features 0..8, ending at relu2_2 (§3.2)

BUNDLED_MODEL_DIR = Path(__file__).resolve().parent.parent / "model"
BUNDLED_MODEL_NAME = "alacgan-starter.safetensors"


# --- reading files --------------------------------------------------------------------------------

def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or .pth file; a missing, truncated or foreign file is a ModelError."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path} is a folder, not a model file")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise many kinds for a bad file
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot read model file {path}: truncated or not a checkpoint ({first_line[:120]})") from exc
    if not isinstance(data, Mapping):
        raise ModelError(f"model file {path} holds a {type(data).__name__}, not a state dict")
    return dict(data)


def strip_module_prefix(state_dict: Mapping[str, object]) -> dict[str, object]:
    """Remove exactly one leading `module.` (nn.DataParallel / DDP) from every key that has it."""
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str) -> None:
    """Load every tensor or fail in one line naming the first few missing, unexpected or mis-shaped keys."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if keys:
            more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
            problems.append(f"{len(keys)} {label}: {', '.join(keys[:3])}{more}")
    if problems:
        raise ModelError(f"{what} does not match the network: " + "; ".join(problems))
    module.load_state_dict(state_dict, strict=True)


# --- official layouts -> ours (one function per network, as timm's checkpoint_filter_fn) ----------

def generator_filter_fn(checkpoint: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Official NetG checkpoint (bare or `state_dictG` training dict, with or without `module.`) -> our keys."""
    if "state_dictG" in checkpoint:
        checkpoint = checkpoint["state_dictG"]  # type: ignore[assignment]
        if not isinstance(checkpoint, Mapping):
            raise ModelError(f"its state_dictG is a {type(checkpoint).__name__}, not a state dict")
    return {k: v for k, v in strip_module_prefix(checkpoint).items() if isinstance(v, torch.Tensor)}


def discriminator_filter_fn(checkpoint: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Official NetD (bare or `state_dictD` in the training dict) -> our keys."""
    if "state_dictD" in checkpoint:
        checkpoint = checkpoint["state_dictD"]  # type: ignore[assignment]
    return {k: v for k, v in strip_module_prefix(checkpoint).items() if isinstance(v, torch.Tensor)}


def _kept_children(state_dict: Mapping[str, torch.Tensor], prefix: str, kept: int) -> dict[str, torch.Tensor]:
    """`<prefix><index>.<param>` for index < kept -> `model.<index>.<param>`; later children are dropped."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)\.(weight|bias)$")
    out = {}
    for key, value in strip_module_prefix(state_dict).items():
        match = pattern.match(key)
        if match and int(match.group(1)) < kept:
            out[f"model.{match.group(1)}.{match.group(2)}"] = value
    return out


def i2v_filter_fn(checkpoint: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official `i2v.pth` (30-child Sequential) -> Illustration2VecFeatures keys (children 0..14 + our mean)."""
    out = _kept_children(checkpoint, "", I2V_KEPT_CHILDREN)
    out["mean"] = Illustration2VecFeatures().mean
    return out


def vgg16_filter_fn(checkpoint: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision `vgg16-397923af.pth` -> VGG16Features keys (features 0..8 + our mean/std)."""
    out = _kept_children(checkpoint, "features.", VGG_KEPT_CHILDREN)
    reference = VGG16Features()
    out["mean"], out["std"] = reference.mean, reference.std
    return out


# --- the project's own format ---------------------------------------------------------------------

@dataclass
class ModelSpec:
    """What the JSON beside a model file says: architecture, which F1, provenance."""

    generator: GeneratorConfig
    features: str  # "i2v" (Illustration2Vec weights supplied by the user) or "lineart" (own, stored in the file)
    feature_width: int = 32
    name: str = "alacgan"
    extra: dict | None = None

    @property
    def working_short_side(self) -> int:
        """Short side of the frames the model was trained to colour (the pipeline's default working size)."""
        return int((self.extra or {}).get("working_short_side", 512))

    @property
    def hint_spread(self) -> bool:
        """Whether the model was trained on strokes spread over their regions (`hints.spread_strokes`)."""
        return bool((self.extra or {}).get("hint_spread", False))

    def to_dict(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "generator": self.generator.to_dict(),
            "features": {"kind": self.features, "channels": self.generator.feature_channels,
                         "width": self.feature_width},
            **(self.extra or {}),
        }

    @classmethod
    def from_dict(cls, data: dict, source: Path) -> ModelSpec:
        """The spec a model JSON describes; anything missing, mistyped or out of range is a ModelError naming it."""
        if not isinstance(data, dict):
            raise ModelError(f"{source} is not an alacgan-batch model description (a JSON "
                             f"{_json_kind(data)}, not an object)")
        if data.get("format") != FORMAT_NAME:
            raise ModelError(f"{source} is not an alacgan-batch model description (format={data.get('format')!r})")
        generator, features = data.get("generator"), data.get("features")
        for key, value in (("generator", generator), ("features", features)):
            if not isinstance(value, dict):
                raise ModelError(f"{source}: {key} must be an object, not {_json_kind(value)}")
        # checked here, in one line naming the field, instead of as a torch error when the network is built
        ngf = _int_field(source, "generator.ngf", generator.get("ngf", 64), minimum=2)
        _int_field(source, "generator.feature_channels", generator.get("feature_channels", 512), minimum=1)
        _int_list_field(source, "generator.depths", generator.get("depths", OFFICIAL_DEPTHS))
        cardinality = _int_list_field(source, "generator.cardinality",
                                      generator.get("cardinality", OFFICIAL_CARDINALITY))
        for mult, groups in zip((8, 4, 2, 1), cardinality, strict=True):
            width = ngf * mult // 2  # ResNeXt bottleneck width of that sub-network (nets.blocks)
            if width % min(groups, width):
                raise ModelError(f"{source}: generator.ngf {ngf} does not split into generator.cardinality "
                                 f"{list(cardinality)}")
        kind = features.get("kind")
        if not isinstance(kind, str):
            raise ModelError(f"{source}: features.kind must be a string (\"i2v\" or \"lineart\"), not {kind!r}")
        feature_width = _int_field(source, "features.width", features.get("width", 32), minimum=1)
        name = data.get("name", source.stem)
        if not isinstance(name, str):
            raise ModelError(f"{source}: name must be a string, not {name!r}")
        if "working_short_side" in data:
            from .compose import MIN_SHORT_SIDE

            _int_field(source, "working_short_side", data["working_short_side"], minimum=MIN_SHORT_SIDE)
        if "hint_spread" in data and not isinstance(data["hint_spread"], bool):
            raise ModelError(f"{source}: hint_spread must be true or false, not {data['hint_spread']!r}")
        known = {"format", "format_version", "name", "generator", "features"}
        try:
            config = GeneratorConfig.from_dict(generator)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{source}: bad generator description ({exc})") from exc
        return cls(generator=config, features=kind, feature_width=feature_width, name=name,
                   extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def official(cls, generator_state: Mapping[str, torch.Tensor]) -> ModelSpec:
        """Architecture of an official-layout generator: its width read off `toH`; its features are always
        Illustration2Vec's (a tunnel4 of another width is then a mis-shaped key, named by load_strict)."""
        if "toH.0.weight" not in generator_state:
            raise ModelError("not an AlacGAN generator checkpoint: no toH.0.weight tensor")
        ngf = int(generator_state["toH.0.weight"].shape[0])
        return cls(GeneratorConfig(ngf=ngf, feature_channels=Illustration2VecFeatures.out_channels), features="i2v",
                   name="alacgan-official")


def _json_kind(value: object) -> str:
    """How JSON names a parsed value's type, for messages."""
    kinds = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _int_field(source: Path, key: str, value: object, minimum: int) -> int:
    """`value` as an int >= minimum; a string, a fraction, a boolean or too small a number is a ModelError."""
    # JSON `true` parses as bool, an int subclass: not a size
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ModelError(f"{source}: {key} must be a whole number >= {minimum}, not {json.dumps(value)}")
    return value


def _int_list_field(source: Path, key: str, value: object) -> tuple[int, ...]:
    """Four ints >= 1 (one per sub-network, tunnel4..tunnel1)."""
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise ModelError(f"{source}: {key} must be a list of 4 whole numbers, not {json.dumps(value)}")
    return tuple(_int_field(source, f"{key}[{i}]", v, minimum=1) for i, v in enumerate(value))


def spec_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_model(path: Path, generator: Generator, features: nn.Module | None, spec: ModelSpec) -> None:
    """Write `path` (.safetensors) and its JSON atomically; `features` is stored when it is our own F1."""
    from safetensors.torch import save_file

    tensors = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    if spec.features == "lineart":
        if features is None:
            raise ValueError("a model with its own line-art features must be saved with them")
        tensors.update({f"features.{k}": v.detach().cpu().contiguous() for k, v in features.state_dict().items()})
    with atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT_NAME})
    write_json_atomic(spec_path(path), spec.to_dict())


def _split(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


# --- loading ------------------------------------------------------------------------------------

@dataclass
class ColorizationModel:
    """G and F1 ready for inference, and where they came from."""

    generator: Generator
    features: nn.Module
    spec: ModelSpec
    weights: Path
    i2v: Path | None = None

    def to(self, device: torch.device | str) -> ColorizationModel:
        self.generator.to(device)
        self.features.to(device)
        return self


def _load_generator_state(path: Path) -> tuple[ModelSpec, dict[str, torch.Tensor]]:
    path = Path(path)
    state = read_state_dict(path)
    if path.suffix == ".safetensors":
        json_path = spec_path(path)
        if not json_path.is_file():
            raise ModelError(f"{path} has no model description beside it ({json_path.name} is missing)")
        try:
            spec = ModelSpec.from_dict(json.loads(json_path.read_text(encoding="utf-8")), json_path)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{json_path} is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
        except UnicodeDecodeError as exc:
            raise ModelError(f"{json_path} is not valid JSON (not UTF-8 text)") from exc
        return spec, state
    if {"generator", "step", "config"} <= state.keys():
        raise ModelError(f"{path} is a training checkpoint of `alacgan train`, not a model file: make one with "
                         "`alacgan export RUN -o DIR` and pass its .safetensors")
    try:
        generator_state = generator_filter_fn(state)
        spec = ModelSpec.official(generator_state)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    return spec, {f"generator.{k}": v for k, v in generator_state.items()}


def _build_generator(path: Path) -> tuple[ModelSpec, Generator, dict[str, torch.Tensor]]:
    """Spec, strictly loaded generator (eval mode) and the file's tensors (for the model's own F1)."""
    spec, state = _load_generator_state(path)
    try:
        generator = Generator(spec.generator)
    except (RuntimeError, ValueError, TypeError) as exc:  # an architecture from_dict's checks did not foresee
        if path.suffix == ".safetensors":
            raise ModelError(f"{path}: the network its description asks for cannot be built ({exc})") from exc
        shape = tuple(state["generator.toH.0.weight"].shape)
        raise ModelError(f"{path}: toH.0.weight {shape} is mis-shaped: no generator of the official layout is "
                         f"{shape[0]} channels wide ({exc})") from exc
    load_strict(generator, _split(state, "generator."), f"generator weights {path}")
    return spec, generator.eval(), state


def load_generator(path: Path | str, device: str | torch.device = "cpu") -> Generator:
    """The generator of an official checkpoint or a project model file, strictly loaded, in eval mode."""
    return _build_generator(Path(path))[1].to(device)


def load_i2v(path: Path | str, device: str | torch.device = "cpu") -> Illustration2VecFeatures:
    """F1 from the official `i2v.pth`, strictly loaded, in eval mode."""
    net = Illustration2VecFeatures()
    load_strict(net, i2v_filter_fn(read_state_dict(Path(path))), f"Illustration2Vec weights {path}")
    return net.eval().to(device)


def load_vgg16(path: Path | str, device: str | torch.device = "cpu") -> VGG16Features:
    """F2 from torchvision's `vgg16-397923af.pth`, strictly loaded, in eval mode, frozen."""
    net = VGG16Features()
    load_strict(net, vgg16_filter_fn(read_state_dict(Path(path))), f"VGG16 weights {path}")
    net.requires_grad_(False)
    return net.eval().to(device)


def load_model(weights: Path, i2v: Path | None = None, device: str | torch.device = "cpu") -> ColorizationModel:
    """G plus the F1 its JSON asks for: Illustration2Vec from `i2v`, or the model's own line-art features."""
    spec, generator, state = _build_generator(Path(weights))
    if spec.features == "i2v":
        if i2v is None:
            raise ModelError(f"model {Path(weights).name} needs Illustration2Vec weights: pass --i2v i2v.pth "
                             "or set ALACGAN_I2V")
        features: nn.Module = load_i2v(i2v)
    elif spec.features == "lineart":
        features = LineArtFeatures(spec.generator.feature_channels, spec.feature_width)
        load_strict(features, _split(state, "features."), f"line-art feature weights {weights}")
        i2v = None  # not used by this model
    else:
        raise ModelError(f"model {weights} asks for unknown features {spec.features!r}")
    if getattr(features, "out_channels", None) != spec.generator.feature_channels:
        raise ModelError(f"model {weights} expects {spec.generator.feature_channels}-channel features, "
                         f"F1 gives {features.out_channels}")
    model = ColorizationModel(generator, features.eval(), spec, Path(weights), i2v)
    return model.to(device)


# --- where model files come from ----------------------------------------------------------------

@dataclass
class ModelFiles:
    weights: Path | None
    weights_source: str
    i2v: Path | None
    i2v_source: str


def user_model_dir() -> Path:
    return Path(os.environ.get("ALACGAN_HOME") or Path.home() / ".cache" / "alacgan")


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def resolve_model_files(weights: Path | str | None = None, i2v: Path | str | None = None) -> ModelFiles:
    """Flags, then ALACGAN_WEIGHTS/ALACGAN_I2V, then the user model folder, then the bundled model."""
    for given, flag in ((weights, "--weights"), (i2v, "--i2v")):
        if given and not Path(given).is_file():  # named on purpose: never fall back past it in silence
            raise ModelError(f"{flag} {given}: no such file")
    user_dir = user_model_dir()
    found_weights, weights_source = None, "not found"
    for candidate, source in (
        (weights, "--weights"),
        (os.environ.get("ALACGAN_WEIGHTS"), "ALACGAN_WEIGHTS"),
        (_first_existing(user_dir, ("generator.safetensors", "netG.pth")), f"user folder {user_dir}"),
        (_first_existing(BUNDLED_MODEL_DIR, (BUNDLED_MODEL_NAME,)), "bundled model"),
    ):
        if candidate:
            found_weights, weights_source = Path(candidate), source
            break
    found_i2v, i2v_source = None, "not found"
    for candidate, source in (
        (i2v, "--i2v"),
        (os.environ.get("ALACGAN_I2V"), "ALACGAN_I2V"),
        (_first_existing(user_dir, ("i2v.pth",)), f"user folder {user_dir}"),
    ):
        if candidate:
            found_i2v, i2v_source = Path(candidate), source
            break
    return ModelFiles(found_weights, weights_source, found_i2v, i2v_source)


def file_digest(path: Path) -> str:
    """Short sha256 of a model file, to tell whether a resumed run uses the same weights."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
