"""The colorize pipeline: read frames -> plan hints -> infer in batches -> compose -> write.

`Colorizer` is what the CLI and studio scripts call; each stage is a plain function of its own module.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .checkpoints import ColorizationModel, load_model, resolve_model_files
from .compose import WORKING_SHORT_SIDE, compose, sketch_at, strokes_at, working_size
from .engine import Engine, WorkItem
from .errors import InputError, ModelError, OutputError
from .hints import HintSpec
from .plan import Plan, build_plan
from .sequence import LineArt, lineart_from_array, read_lineart
from .writer import write_json_atomic, write_png

MANIFEST_NAME = "alacgan-manifest.json"
ProgressCallback = Callable[[int, int], None]  # (frames done, frames total)


@dataclass
class ColorizeSummary:
    input: str
    output: str
    frames: int
    written: int
    skipped: int
    keyframes: list[str]
    model: str
    model_source: str
    device: str
    precision: str
    batch_size: int
    seconds: float
    outputs: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "fps": round(self.fps, 3)}


def default_output(source: Path) -> Path:
    """`shot/lineart/` -> `shot/lineart_color/` (a sibling, never inside the input)."""
    source = Path(source)
    base = source if source.is_dir() else source.parent
    return base.parent / f"{base.name}_color"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class Colorizer:
    """A loaded model plus the settings to colour frames with it.

    >>> colorizer = Colorizer()                       # bundled model, CUDA if present
    >>> colorizer.colorize_sequence("shot/lineart", hints=["shot/hints"], output="shot/color")
    """

    def __init__(self, weights: Path | str | None = None, i2v: Path | str | None = None, device: str = "auto",
                 batch_size: int | None = None, precision: str = "auto",
                 short_side: int | None = WORKING_SHORT_SIDE, overlay_lines: bool = True) -> None:
        files = resolve_model_files(weights, i2v)
        if files.weights is None:
            raise ModelError("no model found: pass --weights, set ALACGAN_WEIGHTS, or reinstall the bundled model")
        self.model_files = files
        self.model: ColorizationModel = load_model(files.weights, files.i2v)
        self.engine = Engine(self.model, device, batch_size, precision)
        self.short_side = short_side
        self.overlay_lines = overlay_lines

    # --- one image ----------------------------------------------------------------------------

    def _work_item(self, key: object, lineart: LineArt, strokes: np.ndarray | None) -> WorkItem:
        size = working_size(lineart.size, self.short_side)
        return WorkItem(key, sketch_at(lineart, size), strokes_at(strokes, size) if strokes is not None else None)

    def colorize_image(self, lineart: np.ndarray | LineArt | Path | str, strokes: np.ndarray | None = None
                       ) -> np.ndarray:
        """One frame: line art (path, LineArt, or float/uint8 array) and optional RGBA strokes -> uint8 RGB."""
        if isinstance(lineart, (str, Path)):
            lineart = read_lineart(Path(lineart))
        elif isinstance(lineart, np.ndarray):
            array = lineart.astype(np.float32) / 255.0 if lineart.dtype == np.uint8 else lineart
            lineart = lineart_from_array(array)
        if strokes is not None and strokes.shape[:2] != lineart.size:
            raise InputError(f"strokes are {strokes.shape[1]}x{strokes.shape[0]} but the frame is "
                             f"{lineart.size[1]}x{lineart.size[0]}")
        (color,) = self.engine.run_batch([self._work_item(0, lineart, strokes)])
        return compose(color, lineart, self.overlay_lines)

    # --- a sequence ---------------------------------------------------------------------------

    def settings(self, plan: Plan) -> dict:
        """What determines the output pixels; a resumed run must match it."""
        return {
            "model": str(self.model_files.weights),
            "model_digest": _file_digest(self.model_files.weights),
            "i2v": str(self.model_files.i2v) if self.model.spec.features == "i2v" else None,
            "short_side": self.short_side,
            "overlay_lines": self.overlay_lines,
            "hints": {plan.frames[i].name: str(p) for i, p in sorted(plan.keyframes.items())},
        }

    def colorize_sequence(self, source: Path | str, hints: Sequence[HintSpec | str | Path] = (),
                          output: Path | str | None = None, resume: bool = False, overwrite: bool = False,
                          progress: ProgressCallback | None = None) -> ColorizeSummary:
        """Colour every frame of `source` (a folder or one image) into `output` (default `<input>_color`)."""
        start = time.perf_counter()
        source = Path(source)
        plan = build_plan(source, hints)
        output = Path(output) if output is not None else default_output(source)
        targets = [output / f"{frame.path.stem}.png" for frame in plan.frames]
        _check_output(source, output, plan, targets)
        settings = self.settings(plan)
        done = _prepare_output(output, targets, settings, resume, overwrite)

        todo = [i for i, target in enumerate(targets) if i not in done]
        total, finished = len(targets), len(done)
        if progress:
            progress(finished, total)
        written: list[str] = []
        with ThreadPoolExecutor(max_workers=2) as pool:
            # frames are read one batch ahead and written behind, so the network is rarely idle
            prepared = _prefetch(pool, todo, lambda i: self._read_item(plan, i), ahead=self.engine.batch_size * 2)
            pending: list[Future] = []
            linearts: dict[int, LineArt] = {}

            def items() -> Iterator[WorkItem]:
                for index, (lineart, item) in prepared:
                    linearts[index] = lineart
                    yield item

            for index, color in self.engine.run(items()):
                pending.append(pool.submit(self._compose_and_write, linearts.pop(index), color, targets[index]))
                written.append(str(targets[index]))
                while pending and (pending[0].done() or len(pending) > 4):
                    pending.pop(0).result()
                    finished += 1
                    if progress:
                        progress(finished, total)
            for future in pending:
                future.result()
                finished += 1
                if progress:
                    progress(finished, total)

        write_json_atomic(output / MANIFEST_NAME, {**settings, "frames": [t.name for t in targets],
                                                   "complete": True})
        return ColorizeSummary(
            input=str(source), output=str(output), frames=total, written=len(written), skipped=len(done),
            keyframes=[plan.frames[i].name for i in plan.hinted], model=str(self.model_files.weights),
            model_source=self.model_files.weights_source, device=str(self.engine.device),
            precision=self.engine.precision_name, batch_size=self.engine.batch_size,
            seconds=round(time.perf_counter() - start, 3), outputs=written,
        )

    def _read_item(self, plan: Plan, index: int) -> tuple[LineArt, WorkItem]:
        lineart = read_lineart(plan.frames[index].path)
        return lineart, self._work_item(index, lineart, plan.strokes_for(index))

    def _compose_and_write(self, lineart: LineArt, color: np.ndarray, target: Path) -> None:
        write_png(target, compose(color, lineart, self.overlay_lines))


def _prefetch(pool: ThreadPoolExecutor, indices: list[int], read: Callable, ahead: int) -> Iterator:
    futures: list[tuple[int, Future]] = []
    position = 0
    while position < len(indices) or futures:
        while position < len(indices) and len(futures) < ahead:
            futures.append((indices[position], pool.submit(read, indices[position])))
            position += 1
        index, future = futures.pop(0)
        yield index, future.result()


def _check_output(source: Path, output: Path, plan: Plan, targets: list[Path]) -> None:
    """Refuse outputs that would write over inputs."""
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {output} exists and is not a folder")
    source_dir = source.resolve() if source.is_dir() else source.resolve().parent
    if output.resolve() == source_dir:
        raise OutputError(f"output folder {output} is the input folder; choose another with -o")
    inputs = {f.path.resolve() for f in plan.frames} | {p.resolve() for p in plan.keyframes.values()}
    clash = next((t for t in targets if t.resolve() in inputs), None)
    if clash is not None:
        raise OutputError(f"output {clash} would overwrite an input file; choose another folder with -o")


def _prepare_output(output: Path, targets: list[Path], settings: dict, resume: bool, overwrite: bool) -> set[int]:
    """Indices already done (on --resume); refuses to mix runs or overwrite without being asked."""
    existing = {i for i, t in enumerate(targets) if t.exists()}
    manifest_path = output / MANIFEST_NAME
    if resume:
        if manifest_path.exists():
            try:
                previous = json.loads(manifest_path.read_text())
            except json.JSONDecodeError as exc:
                raise OutputError(f"{manifest_path} is damaged ({exc.msg}); use --overwrite to start again") from exc
            changed = [k for k in settings if previous.get(k) != settings[k]]
            if changed:
                raise OutputError(f"--resume: settings differ from the run in {output} ({', '.join(changed)}); "
                                  "use --overwrite to start again")
        elif existing:
            raise OutputError(f"--resume: {output} has frames but no {MANIFEST_NAME}; use --overwrite")
    elif existing and not overwrite:
        raise OutputError(f"output folder {output} already holds {len(existing)} of {len(targets)} frames; "
                          "pass --resume to finish an interrupted run or --overwrite to replace them")
    else:
        existing = set()
    output.mkdir(parents=True, exist_ok=True)
    write_json_atomic(manifest_path, {**settings, "frames": [t.name for t in targets], "complete": False})
    return existing


def colorize_sequence(source: Path | str, hints: Sequence[HintSpec | str | Path] = (),
                      output: Path | str | None = None, *, weights: Path | str | None = None,
                      i2v: Path | str | None = None, resume: bool = False, overwrite: bool = False,
                      progress: ProgressCallback | None = None, **options) -> ColorizeSummary:
    """One call for scripts: load the model (see `Colorizer` for options) and colour a sequence."""
    colorizer = Colorizer(weights=weights, i2v=i2v, **options)
    return colorizer.colorize_sequence(source, hints, output, resume=resume, overwrite=overwrite, progress=progress)
