"""Training data for the paper's method: sketches, targets and simulated colour hints.

- XDoG line extraction (§4.1) and the sketch intensity jitter (§4.2).
- Short-side resize, random crop, random horizontal flip (§4.2).
- Simulated hints (§3.1): random pixels of the 1/4-size target under the mask B = R > |xi|; only the
  first half of each batch gets hints, the other half trains automatic colouring. Optionally
  stroke-shaped hints (what artists draw), encoded by `hints.strokes_to_hint` exactly as at inference.
- Two sources: a folder prepared by `prepare_dataset` (illustrations -> XDoG sketches + manifest.json),
  and procedural cel frames from `alacgan_batch.synth`, generated on the fly.

Every sample is a pure function of (seed, rank, sample index): there is no hidden RNG stream, so any
number of DataLoader workers gives the same batches and a resumed run sees exactly the data an
uninterrupted run would have seen.
"""

from __future__ import annotations

import json
import math
import signal
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import ConfigError, InputError
from ..hints import HINT_SCALE, spread_strokes, strokes_to_hint
from ..writer import atomic_path, write_json_atomic

# §4.1: XDoG settings for synthetic line art.
XDOG_PHI = 1e9  # step transition at line borders
XDOG_SIGMAS = (0.3, 0.4, 0.5)  # random choice -> several line thicknesses
XDOG_TAU = 0.95
XDOG_KAPPA = 4.5
XDOG_EPSILON = 0.0  # threshold on the DoG response; not given in the paper, 0 keeps flat areas white
# §4.2: non-black sketches, x_hat = 1 - lambda * (1 - x), lambda ~ U(0.7, 1).
SKETCH_JITTER = (0.7, 1.0)
# §3.1: xi ~ N(1, 0.005). The official code draws xi from N(1, 0.005) truncated to [0, 1]; we do the
# same (xi = 1 - |z| * 0.005, z ~ N(0, 1)), so the expected hint density is 0.005 * sqrt(2 / pi) = 0.4 %.
HINT_XI_MEAN = 1.0
HINT_XI_STD = 0.005

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MANIFEST = "manifest.json"
TRAIN_SEED_LIMIT = 1_000_000  # synth seeds used for training are < 10^6; validation and benchmarks use others
VAL_SEED_BASE = 500_000_000  # held-out synth frames for the validation metric


# --- sketches -----------------------------------------------------------------------------------

def xdog(gray: np.ndarray, sigma: float = 0.4, tau: float = XDOG_TAU, kappa: float = XDOG_KAPPA,
         phi: float = XDOG_PHI, epsilon: float = XDOG_EPSILON) -> np.ndarray:
    """§4.1 XDoG: grey HxW (uint8 or float in [0,1]) -> line art HxW float32 in [0,1], 1 = paper, 0 = ink.

    D = G_sigma(I) - tau * G_{kappa sigma}(I); T = 1 where D >= epsilon else 1 + tanh(phi (D - epsilon)).
    With phi = 1e9 the soft ramp is a step, so the result is binary up to float rounding.
    """
    image = gray.astype(np.float32) / 255.0 if gray.dtype == np.uint8 else gray.astype(np.float32)
    small = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    large = cv2.GaussianBlur(image, (0, 0), sigma * kappa, borderType=cv2.BORDER_REFLECT)
    response = small - tau * large
    with np.errstate(over="ignore"):
        soft = 1.0 + np.tanh(phi * (response - epsilon))
    return np.where(response >= epsilon, 1.0, np.clip(soft, 0.0, 1.0)).astype(np.float32)


def jitter_sketch(sketch: np.ndarray, rng: np.random.Generator, low: float = SKETCH_JITTER[0],
                  high: float = SKETCH_JITTER[1]) -> np.ndarray:
    """§4.2: lighter, non-black lines: x_hat = 1 - lambda (1 - x), lambda ~ U(low, high); x in [0,1]."""
    lam = rng.uniform(low, high)
    return (1.0 - lam * (1.0 - sketch)).astype(np.float32)


# --- geometry -----------------------------------------------------------------------------------

def resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is `size` (area filter when shrinking, cubic when growing)."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    if scale == 1:
        return image
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return cv2.resize(image, new, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def crop_window(shape: tuple[int, int], size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner of a random size x size window in an image of `shape` (>= size both ways)."""
    h, w = shape
    return int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))


# --- simulated hints ----------------------------------------------------------------------------

def hint_mask(height: int, width: int, rng: np.random.Generator, xi_std: float = HINT_XI_STD) -> np.ndarray:
    """§3.1: B = R > |xi|, R ~ U(0,1) per pixel of the 1/4-size map, xi ~ N(1, xi_std) truncated to [0,1]."""
    xi = HINT_XI_MEAN - abs(rng.standard_normal()) * xi_std
    return (rng.random((height, width)) > abs(xi)).astype(np.float32)


def pixel_hint(color: np.ndarray, rng: np.random.Generator, xi_std: float = HINT_XI_STD) -> torch.Tensor:
    """§3.1 hint H = {Y_down * B, B}: colour HxWx3 float [0,1] -> 4x(H/4)x(W/4), colour in [-1,1] times B."""
    h, w = color.shape[0] // HINT_SCALE, color.shape[1] // HINT_SCALE
    down = cv2.resize(color, (w, h), interpolation=cv2.INTER_AREA)  # Y_down, 4x smaller
    mask = hint_mask(h, w, rng, xi_std)
    hint = np.concatenate([(down * 2 - 1) * mask[..., None], mask[..., None]], axis=2)
    return torch.from_numpy(np.ascontiguousarray(hint.transpose(2, 0, 1))).float()


def random_strokes(color: np.ndarray, rng: np.random.Generator, count: int,
                   width_range: tuple[int, int] = (3, 7)) -> tuple[np.ndarray, np.ndarray]:
    """Short strokes of the target's own colour: colour HxWx3 float [0,1] -> (stroke rgb, stroke mask HxW).

    Each stroke is a 2-4 point polyline of one colour, the median of the target under it, as a user
    picks one colour per stroke. Used for folder datasets (synth frames use `synth.draw_hint_strokes`).
    """
    h, w = color.shape[:2]
    rgb = np.zeros_like(color)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(count):
        points = [np.array([rng.integers(0, w), rng.integers(0, h)])]
        for _ in range(int(rng.integers(1, 4))):
            step = rng.normal(0, max(h, w) * 0.04, size=2)
            points.append(np.clip(points[-1] + step, [0, 0], [w - 1, h - 1]))
        stroke = np.zeros((h, w), np.uint8)
        pts = np.round(np.stack(points)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(stroke, [pts], False, 1, thickness=int(rng.integers(*width_range)))
        inside = stroke > 0
        rgb[inside] = np.median(color[inside], axis=0)
        mask |= stroke
    return rgb, mask.astype(np.float32)


def _chw(image: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC numpy -> 1xCxHxW float tensor."""
    image = image[..., None] if image.ndim == 2 else image
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()[None]


def stroke_hint(rgb: np.ndarray, mask: np.ndarray, sketch: np.ndarray | None = None) -> torch.Tensor:
    """Stroke colours HxWx3 [0,1] and mask HxW -> the §3.4 hint 4x(H/4)x(W/4) via `hints.strokes_to_hint`.

    With the sketch (HxW [0,1]) the strokes are also spread over their regions (`hints.spread_strokes`),
    as the engine does for a model trained with `hint_spread`.
    """
    spread = None
    if sketch is not None:
        fill_rgb, filled = spread_strokes(rgb, mask, sketch)
        spread = (_chw(fill_rgb), _chw(filled))
    return strokes_to_hint(_chw(rgb), _chw(mask), thin=True, spread=spread)[0]


def empty_hint_like(size: int) -> torch.Tensor:
    return torch.zeros(4, size // HINT_SCALE, size // HINT_SCALE)


# --- samples ------------------------------------------------------------------------------------

@dataclass
class DataOptions:
    """Everything the data side needs from a training config."""

    image_size: int = 512  # crop size (§4.2: 512)
    batch_size: int = 4  # per process; hints go to the first `hint_fraction` of each batch
    seed: int = 0
    rank: int = 0
    hint_fraction: float = 0.5  # §3.1 / official code: half of each batch gets hints
    stroke_hint_prob: float = 0.0  # share of hinted samples whose hints are strokes instead of pixels
    stroke_parts_all_prob: float = 0.5  # synth: stroke every part, else a random subset of parts
    xi_std: float = HINT_XI_STD
    xdog_sigmas: tuple[float, ...] = XDOG_SIGMAS
    jitter: tuple[float, float] = SKETCH_JITTER
    flip: bool = True
    synth_size: int = 256  # synth frames are drawn at this size, then cropped to image_size
    synth_xdog_prob: float = 0.0  # synth: share of samples whose sketch is XDoG of the colour frame
    hint_spread: bool = False  # stroke hints also spread over their closed regions (hints.spread_strokes)
    extra: dict = field(default_factory=dict)


def sample_rng(options: DataOptions, index: int, purpose: int = 0) -> np.random.Generator:
    """The RNG of one sample: a function of (seed, rank, index) only, so workers and resumes agree."""
    return np.random.default_rng([options.seed, options.rank, index, purpose])


def is_hinted(options: DataOptions, index: int) -> bool:
    """The first round(batch * hint_fraction) samples of every batch are hinted, the rest are empty."""
    return index % options.batch_size < round(options.batch_size * options.hint_fraction)


def _to_sample(sketch: np.ndarray, color: np.ndarray, hint: torch.Tensor, skipped: int) -> dict:
    """Numpy sketch HxW [0,1] and colour HxWx3 [0,1] -> tensors in [-1, 1] as the networks take them."""
    return {
        "sketch": torch.from_numpy(np.ascontiguousarray(sketch))[None] * 2 - 1,
        "color": torch.from_numpy(np.ascontiguousarray(color.transpose(2, 0, 1))) * 2 - 1,
        "hint": hint,
        "skipped": skipped,
    }


def _make_hint(options: DataOptions, index: int, color: np.ndarray, sketch: np.ndarray,
               rng: np.random.Generator) -> torch.Tensor:
    """Pixel (§3.1) or stroke (§3.4) hint for a hinted slot, an empty hint otherwise."""
    if not is_hinted(options, index):
        return empty_hint_like(options.image_size)
    if rng.random() < options.stroke_hint_prob:
        strokes = random_strokes(color, rng, count=int(rng.integers(1, 9)))
        return stroke_hint(*strokes, sketch=sketch if options.hint_spread else None)
    return pixel_hint(color, rng, options.xi_std)


class SynthDataset(Dataset):
    """Procedural cel frames from `alacgan_batch.synth`: its line art is the sketch, `color` the target.

    Index k -> frame seed drawn from (seed, rank, k), always < 10^6 (held-out seeds stay unseen).
    """

    def __init__(self, options: DataOptions) -> None:
        from .. import synth  # written alongside; imported lazily so folder training does not need it

        self.synth = synth
        self.options = options
        if options.synth_size < options.image_size:
            raise InputError(f"synth frames ({options.synth_size}) are smaller than the crop ({options.image_size})")

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, index: int) -> dict:
        o = self.options
        rng = sample_rng(o, index)
        frame_seed = int(rng.integers(0, TRAIN_SEED_LIMIT))
        frame = self.synth.make_frame(frame_seed, size=(o.synth_size, o.synth_size))
        color = frame.color.astype(np.float32) / 255.0
        if rng.random() < o.synth_xdog_prob:
            sketch = xdog(cv2.cvtColor(frame.color, cv2.COLOR_RGB2GRAY), float(rng.choice(o.xdog_sigmas)))
        else:
            sketch = frame.lineart.astype(np.float32) / 255.0
        strokes = None
        hinted = is_hinted(o, index)
        use_strokes = hinted and rng.random() < o.stroke_hint_prob
        if use_strokes:
            parts = None
            if rng.random() >= o.stroke_parts_all_prob:
                labels = np.unique(frame.labels)
                parts = sorted(int(p) for p in rng.choice(labels, size=int(rng.integers(1, len(labels) + 1)),
                                                          replace=False))
            rgba = self.synth.draw_hint_strokes(frame, rng, parts=parts)
            strokes = (rgba[..., :3].astype(np.float32) / 255.0, (rgba[..., 3] > 127).astype(np.float32))
        top, left = crop_window(sketch.shape, o.image_size, rng)
        flip = o.flip and rng.random() < 0.5
        win = (slice(top, top + o.image_size), slice(left, left + o.image_size))

        def geo(a: np.ndarray) -> np.ndarray:
            a = a[win]
            return a[:, ::-1] if flip else a

        sketch = jitter_sketch(geo(sketch), rng, *o.jitter)
        color = geo(color)
        if not hinted:
            hint = empty_hint_like(o.image_size)
        elif use_strokes:
            hint = stroke_hint(geo(strokes[0]), geo(strokes[1]), sketch if o.hint_spread else None)
        else:
            hint = pixel_hint(color, rng, o.xi_std)
        return _to_sample(sketch, color, hint, 0)


def _item_problem(item: object) -> str | None:
    """What is wrong with one manifest item (it must be {"color": path, "sketches": [path, ...]}), or None."""
    if not isinstance(item, dict):
        return f"is not an object ({type(item).__name__})"
    if not isinstance(item.get("color"), str) or not item["color"]:
        return "has no 'color' file"
    sketches = item.get("sketches")
    if not isinstance(sketches, list) or not sketches or not all(isinstance(s, str) and s for s in sketches):
        return "has no 'sketches' list of files"
    return None


def _manifest_items(manifest: object) -> list[dict]:
    """The items of a prepared dataset's manifest; ValueError naming the first bad entry.

    Checked where the manifest is read, so a damaged one stops before the run folder is made, not as a
    TypeError in a data worker mid-run.
    """
    if not isinstance(manifest, dict):
        raise ValueError(f"not an object ({type(manifest).__name__})")
    items = manifest.get("items")
    if not isinstance(items, list):
        raise ValueError("no 'items' list" if items is None else f"'items' is not a list ({type(items).__name__})")
    for n, item in enumerate(items):
        problem = _item_problem(item)
        if problem:
            raise ValueError(f"item {n} {problem}")
    return items


class FolderDataset(Dataset):
    """A folder written by `prepare_dataset`: colour images + XDoG sketches per sigma, listed in manifest.json.

    Index k -> epoch k // n, position k % n in that epoch's permutation (seeded by (seed, epoch)): a
    DistributedSampler-like order that needs no state beyond the step. A file that cannot be read is
    skipped with a warning (the next one in the order is used) and counted in the sample's `skipped`.
    """

    def __init__(self, root: Path, options: DataOptions) -> None:
        self.root = Path(root)
        self.options = options
        manifest_path = self.root / MANIFEST
        if not self.root.is_dir():
            raise InputError(f"training data folder not found: {self.root}")
        if not manifest_path.is_file():
            raise InputError(f"{self.root} is not a prepared dataset (no {MANIFEST}); run `alacgan prepare "
                             f"SRC -o {self.root}` first")
        try:
            manifest = json.loads(manifest_path.read_text())
            self.items = _manifest_items(manifest)
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{manifest_path} is damaged ({exc}); run `alacgan prepare SRC -o {self.root}` "
                             "again") from exc
        if not self.items:
            raise InputError(f"prepared dataset {self.root} holds no usable images")
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return 2**62

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.options.seed, epoch]).permutation(len(self.items))}
        return self._orders[epoch]

    def _item(self, position: int) -> dict:
        n = len(self.items)
        return self.items[int(self._order(position // n)[position % n])]

    def _read(self, item: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        color = cv2.imread(str(self.root / item["color"]), cv2.IMREAD_COLOR)
        sketch_name = item["sketches"][int(rng.integers(0, len(item["sketches"])))]
        sketch = cv2.imread(str(self.root / sketch_name), cv2.IMREAD_GRAYSCALE)
        if color is None or sketch is None or color.shape[:2] != sketch.shape[:2]:
            raise OSError(f"unreadable or mismatched files for {item['color']}")
        return sketch, cv2.cvtColor(color, cv2.COLOR_BGR2RGB)

    def __getitem__(self, index: int) -> dict:
        o = self.options
        rng = sample_rng(o, index)
        # Each rank reads its own slice of the global order (index already carries the rank's offset).
        position, skipped = index, 0
        while True:
            item = self._item(position)
            try:
                sketch, color = self._read(item, rng)
                break
            except OSError as exc:
                skipped += 1
                warnings.warn(f"skipping training image: {exc}", stacklevel=2)
                if skipped > 100:
                    raise InputError(f"over 100 unreadable images in a row in {self.root}") from exc
                position += 1
        sketch = resize_short_side(sketch, o.image_size).astype(np.float32) / 255.0
        color = resize_short_side(color, o.image_size).astype(np.float32) / 255.0
        top, left = crop_window(sketch.shape[:2], o.image_size, rng)
        win = (slice(top, top + o.image_size), slice(left, left + o.image_size))
        sketch, color = sketch[win], color[win]
        if o.flip and rng.random() < 0.5:
            sketch, color = sketch[:, ::-1], color[:, ::-1]
        sketch = jitter_sketch(sketch, rng, *o.jitter)
        color = np.ascontiguousarray(color)
        return _to_sample(sketch, color, _make_hint(o, index, color, sketch, rng), skipped)


class StreamSampler(Sampler[int]):
    """Endless sample indices from batch `start_step` on: step s, rank r, slot i -> (s * world + r) * batch + i.

    Ranks get disjoint indices (like DistributedSampler); the index also seeds the sample, so a resumed
    run continues the exact sequence.
    """

    def __init__(self, start_step: int, batch_size: int, world: int = 1, rank: int = 0) -> None:
        self.start_step, self.batch_size, self.world, self.rank = start_step, batch_size, world, rank

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        while True:
            base = (step * self.world + self.rank) * self.batch_size
            yield from range(base, base + self.batch_size)
            step += 1

    def __len__(self) -> int:
        return 2**62


def collate(samples: list[dict]) -> dict:
    return {
        "sketch": torch.stack([s["sketch"] for s in samples]).float(),
        "color": torch.stack([s["color"] for s in samples]).float(),
        "hint": torch.stack([s["hint"] for s in samples]).float(),
        "skipped": sum(int(s["skipped"]) for s in samples),
    }


def _leave_stop_signals_to_the_trainer(worker_id: int) -> None:
    """A farm stops a job by signalling its whole process group (timeout, Slurm, Kubernetes): workers that died
    of it would fail the training loop before it saves. They ignore Ctrl-C and SIGTERM; the loop stops and saves,
    then shuts them down (and they leave on their own if the trainer is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(dataset: Dataset, options: DataOptions, start_step: int, world: int, workers: int
                ) -> torch.utils.data.DataLoader:
    """Endless DataLoader starting at `start_step`; worker processes only parallelise, never change data."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=options.batch_size,
        sampler=StreamSampler(start_step, options.batch_size, world, options.rank),
        num_workers=workers,
        collate_fn=collate,
        worker_init_fn=_leave_stop_signals_to_the_trainer,
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers > 0 else None,
        # Its own generator: creating an iterator draws a base seed, which must not move the global
        # torch RNG (a resumed run creates its iterator at another point of that stream).
        generator=torch.Generator().manual_seed(options.seed),
    )


# --- a cached pool of synth frames ----------------------------------------------------------------

POOL_FILES = ("lineart", "color", "labels", "strokes")


def build_synth_pool(folder: Path, count: int, size: int = 256, start: int = 0, stop: int | None = None) -> Path:
    """Pre-render synth frames `start..stop` of a pool of `count` (seed = frame index, < 10^6) into .npy files.

    On two CPU cores a synth frame plus its hint strokes costs about as much as a training step on it,
    so a recipe may draw from a pre-rendered pool (`synth_pool = N`) instead of rendering every sample:
    crops, flips, jitter, hint subsets and pixel hints still differ per sample. `start`/`stop` let
    several processes fill one pool; files are memory-mapped, so DataLoader workers share them.
    """
    from .. import synth

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if count > TRAIN_SEED_LIMIT:
        raise InputError(f"a synth pool holds at most {TRAIN_SEED_LIMIT} frames (training seeds)")
    shapes = {"lineart": (count, size, size), "color": (count, size, size, 3), "labels": (count, size, size),
              "strokes": (count, size, size, 4)}
    arrays = {}
    for name in POOL_FILES:
        path = folder / f"{name}.npy"
        mode = "r+" if path.is_file() else "w+"
        arrays[name] = np.lib.format.open_memmap(path, mode=mode, dtype=np.uint8, shape=shapes[name])
    for i in range(start, count if stop is None else min(stop, count)):
        frame = synth.make_frame(i, size=(size, size))
        if frame.labels.max() > 255:
            raise ValueError("synth frame has more than 255 parts")
        arrays["lineart"][i] = frame.lineart
        arrays["color"][i] = frame.color
        arrays["labels"][i] = frame.labels
        arrays["strokes"][i] = synth.draw_hint_strokes(frame, np.random.default_rng([i, 7]))
    for array in arrays.values():
        array.flush()
    return folder


class SynthPoolDataset(Dataset):
    """Samples from a pool written by `build_synth_pool`: index k -> frame drawn from (seed, rank, k)."""

    def __init__(self, folder: Path, options: DataOptions) -> None:
        self.folder = Path(folder)
        self.options = options
        missing = [n for n in POOL_FILES if not (self.folder / f"{n}.npy").is_file()]
        if missing:
            raise InputError(f"synth pool {self.folder} is incomplete (missing {', '.join(missing)}.npy)")
        self.arrays: dict[str, np.ndarray] | None = None
        self.count = int(np.load(self.folder / "lineart.npy", mmap_mode="r").shape[0])

    def __len__(self) -> int:
        return 2**62

    def _load(self) -> dict[str, np.ndarray]:
        if self.arrays is None:  # opened lazily, in each worker
            self.arrays = {n: np.load(self.folder / f"{n}.npy", mmap_mode="r") for n in POOL_FILES}
        return self.arrays

    def __getitem__(self, index: int) -> dict:
        o = self.options
        arrays = self._load()
        rng = sample_rng(o, index)
        i = int(rng.integers(0, self.count))
        size = arrays["lineart"].shape[1]
        if size < o.image_size:
            raise InputError(f"synth pool frames ({size}) are smaller than the crop ({o.image_size})")
        top, left = crop_window((size, size), o.image_size, rng)
        win = (i, slice(top, top + o.image_size), slice(left, left + o.image_size))
        flip = o.flip and rng.random() < 0.5

        def geo(a: np.ndarray) -> np.ndarray:
            a = np.asarray(a[win])
            return a[:, ::-1] if flip else a

        color = geo(arrays["color"]).astype(np.float32) / 255.0
        if rng.random() < o.synth_xdog_prob:
            gray = cv2.cvtColor(np.ascontiguousarray(geo(arrays["color"])), cv2.COLOR_RGB2GRAY)
            sketch = xdog(gray, float(rng.choice(o.xdog_sigmas)))
        else:
            sketch = geo(arrays["lineart"]).astype(np.float32) / 255.0
        sketch = jitter_sketch(sketch, rng, *o.jitter)
        if not is_hinted(o, index):
            hint = empty_hint_like(o.image_size)
        elif rng.random() < o.stroke_hint_prob:
            strokes = geo(arrays["strokes"])
            mask = strokes[..., 3] > 127
            if rng.random() >= o.stroke_parts_all_prob:  # strokes on a random subset of the parts
                labels = geo(arrays["labels"])
                present = np.unique(labels[mask])
                if present.size:
                    keep = rng.choice(present, size=int(rng.integers(1, present.size + 1)), replace=False)
                    mask &= np.isin(labels, keep)
            hint = stroke_hint(strokes[..., :3].astype(np.float32) / 255.0, mask.astype(np.float32),
                               sketch if o.hint_spread else None)
        else:
            hint = pixel_hint(np.ascontiguousarray(color), rng, o.xi_std)
        return _to_sample(sketch, color, hint, 0)


# --- validation frames --------------------------------------------------------------------------

def validation_frames(count: int, size: int) -> list[tuple[object, np.ndarray]]:
    """Held-out synth frames (seeds from VAL_SEED_BASE, never used in training) with stroke hints on all parts."""
    from .. import synth

    frames = []
    for i in range(count):
        frame = synth.make_frame(VAL_SEED_BASE + i, size=(size, size))
        rgba = synth.draw_hint_strokes(frame, np.random.default_rng(VAL_SEED_BASE + i))
        frames.append((frame, rgba))
    return frames


# --- preparing a folder of illustrations ---------------------------------------------------------

def _list_images(src: Path) -> list[Path]:
    return sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def prepare_dataset(src: Path, out: Path, size: int = 512, seed: int = 0, progress: bool = True) -> dict:
    """Illustrations under `src` -> `out` with colour images (short side `size`), XDoG sketches and manifest.

    One sketch per §4.1 sigma (0.3/0.4/0.5) so training can pick a line thickness per sample. Cached and
    resumable: an image whose outputs exist is not redone, and the manifest is rewritten atomically every
    100 images. Unreadable images are skipped with a warning and counted. Returns a summary dict.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise InputError(f"illustration folder not found: {src}")
    files = _list_images(src)
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {src}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ConfigError(f"prepare: size must be a whole number of pixels >= 16, not {size!r}")
    if out.resolve() == src.resolve() or out.resolve().is_relative_to(src.resolve()):
        raise InputError("prepare_dataset output must be outside its source folder (it would read its own "
                         "output as illustrations)")
    (out / "color").mkdir(parents=True, exist_ok=True)
    (out / "sketch").mkdir(parents=True, exist_ok=True)
    previous: dict[str, dict] = {}
    if (out / MANIFEST).is_file():
        try:
            manifest = json.loads((out / MANIFEST).read_text())
            # an earlier run at another size (or XDoG setting) made other images: none of them may be reused
            if manifest.get("size") == size and manifest.get("xdog", {}).get("sigmas") == list(XDOG_SIGMAS):
                # a damaged item is made again, not copied into the new manifest
                previous = {i["source"]: i for i in manifest.get("items", [])
                            if _item_problem(i) is None and "source" in i}
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError):
            previous = {}
    items, skipped, cached = [], [], 0

    def write_manifest(done: bool) -> None:
        write_json_atomic(out / MANIFEST, {"source": str(src), "size": size, "seed": seed, "complete": done,
                                           "xdog": {"sigmas": XDOG_SIGMAS, "tau": XDOG_TAU, "kappa": XDOG_KAPPA,
                                                    "phi": XDOG_PHI, "epsilon": XDOG_EPSILON},
                                           "items": items, "skipped": skipped})

    bar = _progress(progress, len(files), "preparing")
    for n, path in enumerate(files):
        rel = path.relative_to(src).as_posix()
        stem = f"{n:07d}_" + "".join(c if c.isalnum() else "_" for c in path.stem)[:40]
        entry = {"source": rel, "color": f"color/{stem}.png",
                 "sketches": [f"sketch/{stem}_s{int(s * 10)}.png" for s in XDOG_SIGMAS]}
        if rel in previous and all((out / f).is_file() for f in [entry["color"], *entry["sketches"]]):
            items.append(previous[rel])
            cached += 1
        else:
            try:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            except (cv2.error, MemoryError):  # a header claiming a huge size: skipped like any unreadable file
                image = None
            if image is None or min(image.shape[:2]) < 16:
                warnings.warn(f"skipping unreadable image {path}", stacklevel=2)
                skipped.append(rel)
            else:
                image = resize_short_side(image, size)
                gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
                for sigma, name in zip(XDOG_SIGMAS, entry["sketches"], strict=True):
                    _write_image(out / name, (xdog(gray, sigma) * 255).round().astype(np.uint8))
                _write_image(out / entry["color"], image)
                items.append(entry)
        if bar:
            bar.advance()
        if n % 100 == 99:
            write_manifest(False)
    if bar:
        bar.close()
    write_manifest(True)
    if not items:
        raise InputError(f"none of the {len(files)} images in {src} could be read ({len(skipped)} skipped)")
    return {"images": len(items), "skipped": len(skipped), "skipped_files": skipped, "cached": cached,
            "out": str(out)}


def _write_image(path: Path, image: np.ndarray) -> None:
    """Atomic PNG in OpenCV channel order (BGR or grey) -- the files are only read back by cv2."""
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise InputError(f"could not encode {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.tobytes())


class _Bar:
    """A minimal Rich progress bar."""

    def __init__(self, total: int, label: str) -> None:
        from rich.progress import Progress

        self.progress = Progress(transient=False)
        self.progress.start()
        self.task = self.progress.add_task(label, total=total)

    def advance(self) -> None:
        self.progress.advance(self.task)

    def close(self) -> None:
        self.progress.stop()


def _progress(enabled: bool, total: int, label: str) -> _Bar | None:
    return _Bar(total, label) if enabled else None


def expected_hint_density(xi_std: float = HINT_XI_STD) -> float:
    """E[1 - |xi|] for xi = 1 - |z| xi_std: the mean share of hinted pixels in a hinted sample (§3.1)."""
    return xi_std * math.sqrt(2 / math.pi)
