"""The colorize pipeline: read frames -> plan hints -> infer in batches -> compose -> write.

`Colorizer` is what the CLI and studio scripts call; each stage is a plain object of its own module:
`sources` (frames in), `plan` (cuts, keyframes, propagated strokes), `engine` (F1 + G in batches),
`temporal` (region colours held from frame to frame), `compose` (full size, lines, regions), `sinks` (atomic
files or a video).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from .checkpoints import ColorizationModel, ModelFiles, file_digest, load_model, resolve_model_files
from .compose import WORKING_SHORT_SIDE, Finish, check_short_side, coverage_at, sketch_at, working_size
from .engine import Engine, WorkItem, batch_items, select_device, select_precision
from .errors import ConfigError, InputError, ModelError
from .hints import HintSpec, hint_files
from .plan import Plan, PlanOptions, build_plan, strokes_to_working
from .sequence import LineArt, lineart_from_array, read_lineart
from .sinks import FolderSink, Sink, VideoSink, default_output, is_video_file, is_video_path
from .sources import FolderSource, FrameSource, VideoSource
from .temporal import LEAD_IN, WINDOW, Stabilizer

ENGINES = ("network", "flat", "hybrid")
ProgressCallback = Callable[[str, int, int], None]  # (phase, done, total): "plan", "propagate", "colorize"


@dataclass
class ColorizeSummary:
    input: str
    output: str
    frames: int
    written: int
    skipped: int
    keyframes: list[str]
    shots: int
    unhinted_shots: list[str]
    engine: str
    model: str | None
    model_source: str | None
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


class Colorizer:
    """A model (unless the engine is `flat`) plus the settings to colour frames with it.

    >>> colorizer = Colorizer()                       # bundled model, CUDA if present
    >>> colorizer.colorize_sequence("shot/lineart", hints=["shot/hints"], output="shot/color")
    >>> Colorizer.from_preset("final", batch_size=4)  # a preset's settings, keywords over them (as the CLI)
    """

    @classmethod
    def from_preset(cls, preset: str | None, **settings) -> Colorizer:
        """Settings of a preset (`presets/NAME.toml` or a .toml path), with `settings` that are not None over
        them: what `alacgan colorize --preset NAME --flag ...` builds."""
        from .presets import load_preset

        merged = load_preset(preset) if preset else {}
        merged.update({k: v for k, v in settings.items() if v is not None})
        return cls(**merged)

    def __init__(self, weights: Path | str | None = None, i2v: Path | str | None = None, device: str = "auto",
                 batch_size: int | None = None, precision: str = "auto",
                 short_side: int | None = None, overlay_lines: bool = True, engine: str = "network",
                 propagate: bool = True, flatten: bool = False, palette: Path | str | None = None,
                 background: str = "white", layers: bool = False, detect_cuts: bool | None = None,
                 on_missing_hints: str = "auto", stabilize: bool = True, lock_hints: bool = True) -> None:
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine {engine!r}: use {', '.join(ENGINES)}")
        self.engine_name = engine
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise ConfigError(f"batch size must be a whole number >= 1, not {batch_size!r}")
        self.model_files: ModelFiles | None = None
        self.model: ColorizationModel | None = None
        self.engine: Engine | None = None
        if engine != "flat":
            files = resolve_model_files(weights, i2v)
            if files.weights is None:
                raise ModelError("no model found: pass --weights, set ALACGAN_WEIGHTS, or reinstall the bundled model")
            self.model_files = files
            self.model = load_model(files.weights, files.i2v)
            self.engine = Engine(self.model, device, batch_size, precision)  # checks device and precision
        else:  # no network to run them, but a bad flag is still a mistake to report
            select_precision(precision, select_device(device))
        check_short_side(short_side)  # now, not when the first frame is sized after a long plan pass
        if short_side is None:  # the size the model was trained at (§4.2: 512 for the paper's model)
            short_side = self.model.spec.working_short_side if self.model else WORKING_SHORT_SIDE
        self.short_side = short_side or None  # 0: the frames' own size
        self.plan_options = PlanOptions(short_side, propagate, detect_cuts, on_missing_hints)
        self.finish = Finish.create(overlay_lines=overlay_lines, flatten=flatten, palette=palette,
                                    background=background, layers=layers, engine=engine, lock_hints=lock_hints)
        # sequences only: the network's region colours held from frame to frame (the flat engine has no drift)
        self.stabilize = stabilize and self.engine is not None

    @property
    def overlay_lines(self) -> bool:
        return self.finish.overlay_lines

    # --- one image ----------------------------------------------------------------------------

    def colorize_image(self, lineart: np.ndarray | LineArt | Path | str, strokes: np.ndarray | None = None
                       ) -> np.ndarray:
        """One frame: line art (path, LineArt, or float/uint8 array) and optional RGBA strokes -> uint8 RGB(A)."""
        if isinstance(lineart, (str, Path)):
            lineart = read_lineart(Path(lineart))
        elif isinstance(lineart, np.ndarray):
            lineart = lineart_from_array(_unit_image(lineart))
        elif not isinstance(lineart, LineArt):
            raise InputError(f"line art must be a path, a LineArt or an image array, not {type(lineart).__name__}")
        if strokes is not None:
            strokes = np.asarray(strokes)
            if strokes.ndim != 3 or strokes.shape[2] != 4 or strokes.dtype != np.uint8:
                raise InputError(f"strokes must be an HxWx4 uint8 RGBA array, not {strokes.dtype} {strokes.shape}")
            if strokes.shape[:2] != lineart.size:
                raise InputError(f"strokes are {strokes.shape[1]}x{strokes.shape[0]} but the frame is "
                                 f"{lineart.size[1]}x{lineart.size[0]}")
        size = working_size(lineart.size, self.short_side)
        working = None
        if strokes is not None:
            working = strokes_to_working(strokes, size)
        color = self._infer([self._work_item(0, lineart, working)])[0]
        return self.finish.apply(color, lineart, working).final

    def _work_item(self, key: object, lineart: LineArt, strokes: np.ndarray | None) -> WorkItem:
        size = working_size(lineart.size, self.short_side)
        hint = None
        if strokes is not None:
            hint = (strokes[..., :3].astype(np.float32) / 255.0, (strokes[..., 3] > 127).astype(np.float32))
        return WorkItem(key, sketch_at(lineart, size), hint)

    def _infer(self, items: list[WorkItem]) -> list[np.ndarray | None]:
        if self.engine is None:
            return [None] * len(items)
        return self.engine.run_batch(items)

    # --- a sequence or a video ----------------------------------------------------------------

    def settings(self, plan: Plan, source: FrameSource | None = None) -> dict:
        """What determines the output pixels; a resumed run must match it."""
        files = self.model_files
        uses_i2v = files is not None and self.model.spec.features == "i2v"
        return {  # model files by name and content, not by the path they were given by
            "engine": self.engine_name,
            "model": files.weights.name if files else None,
            "model_digest": file_digest(files.weights) if files else None,
            "i2v": files.i2v.name if uses_i2v else None,
            "i2v_digest": file_digest(files.i2v) if uses_i2v else None,
            "short_side": self.short_side,
            "propagate": self.plan_options.propagate,
            "stabilize": Stabilizer().describe() if self.stabilize else False,
            "finish": self.finish.describe(),
            # hints by name and content too: an edited hint must not be resumed into, a moved one may
            "hints": {plan.frames[i].label: f"{p.name} {file_digest(p)}" for i, p in sorted(plan.keyframes.items())},
            # a video's frames have no names of their own: another video must not be resumed into, the same one
            # renamed may (a folder's frames are listed by name in the manifest)
            **({"input": file_digest(source.path)} if isinstance(source, VideoSource) else {}),
        }

    def open_source(self, source: Path | str, on_missing: str = "error") -> FrameSource:
        if is_video_file(source):
            return VideoSource.open(source)
        return FolderSource.open(source, on_missing=on_missing)

    def colorize_sequence(self, source: Path | str, hints: Sequence[HintSpec | str | Path] | HintSpec | str | Path = (),
                          output: Path | str | None = None, resume: bool = False, overwrite: bool = False,
                          progress: ProgressCallback | None = None, frames: str | None = None,
                          on_missing_frames: str = "error", codec: str | None = None, crf: int | None = None,
                          fps: str | float | Fraction | None = None) -> ColorizeSummary:
        """Colour every frame of `source` (folder, pattern, single image or video) into `output`.

        `output` is a folder (default `<input>_color`), a pattern (`out/shot.####.png`), or a video file.
        `codec` (h264), `crf` (18) and, for frames into a video, `fps` (24) set how a video output is written.
        """
        start = time.perf_counter()
        if isinstance(hints, str | Path | HintSpec):  # one hint: not a string of one-letter file names
            hints = [hints]
        if resume and overwrite:
            raise ConfigError("--resume keeps an earlier run's frames and --overwrite replaces them: pass one")
        selected: set[int] | None = None  # the frames to write, when the plan reads more (--frames)
        if frames is not None and not is_video_file(source):
            frame_source, selected = FolderSource.open_selection(source, frames, on_missing_frames)
        else:
            frame_source = self.open_source(source, on_missing_frames)
            if frames is not None:  # it would be ignored without a word
                raise ConfigError(f"--frames selects frames of a folder or pattern; {source} is a video, "
                                  "coloured whole")
        output = Path(output) if output is not None else default_output(Path(source), frame_source, codec or "h264")
        rate = _video_settings(output, frame_source, codec, crf, fps)
        if self.finish.layers and is_video_path(output):  # a video has nowhere to keep them
            raise ConfigError(f"--layers writes PNG layers beside frames, not into {output}: write frames "
                              "(-o 'frames/shot.####.png') or leave out --layers")
        protected = frozenset(hint_files(hints))
        # refuse what can be refused before the long plan pass
        video_sink = None
        if is_video_path(output):
            if resume:
                raise ConfigError(f"--resume: {output} is a video, written whole or not at all; run without "
                                  "--resume to start over, or write frames (-o 'frames/shot.####.png') to resume")
            # the encoder opens now: a codec, container, quality or frame size it cannot take is refused here
            video_sink = VideoSink(output, frame_source, codec=codec or "h264", crf=18 if crf is None else crf,
                                   alpha=self.finish.background != "white", fps=rate, overwrite=overwrite,
                                   hints=protected, only=selected)
        else:
            FolderSink.check_target(output, frame_source, protected)
            FolderSink.check_existing(output, frame_source, resume, overwrite)
        sink: Sink | None = video_sink
        try:
            plan = build_plan(frame_source, hints, self.plan_options, progress=progress)
            try:
                if sink is None:
                    sink = FolderSink(output, plan.frames, frame_source, self.settings(plan, frame_source), resume,
                                      overwrite, layers=self.finish.layers, hints=protected, only=selected)
                written = self._run(frame_source, plan, sink, progress)
            finally:
                plan.cleanup()
        except BaseException:
            if sink is not None:
                sink.abort()  # no half-written video, no output folder holding only a manifest
            raise
        engine, files = self.engine, self.model_files
        video = frame_source.kind == "video"
        return ColorizeSummary(
            input=str(source), output=str(output), frames=len(sink), written=len(written),
            skipped=len(sink) - len(written),
            keyframes=[f"@{i}" if video else plan.frames[i].name for i in sorted(plan.keyframes)],
            shots=len(plan.shots),
            unhinted_shots=[f"{plan.frames[shot.start].label}..{plan.frames[shot.stop - 1].label}"
                            for shot in plan.unhinted_shots],
            engine=self.engine_name, model=str(files.weights) if files else None,
            model_source=files.weights_source if files else None,
            device=str(engine.device) if engine else "cpu", precision=engine.precision_name if engine else "-",
            batch_size=engine.batch_size if engine else 1, seconds=round(time.perf_counter() - start, 3),
            outputs=list(dict.fromkeys(written)),  # a video is one output, however many frames went in
        )

    def _run(self, source: FrameSource, plan: Plan, sink: Sink, progress: ProgressCallback | None) -> list[str]:
        todo = set(sink.todo())
        total, finished = len(sink), len(sink) - len(todo)
        if progress:
            progress("colorize", finished, total)
        batch = self.engine.batch_size if self.engine else 1
        written: list[str] = []
        frames_in_flight: dict[int, tuple[LineArt, np.ndarray | None]] = {}  # read once, finished later
        waiting: dict[int, tuple[LineArt, np.ndarray | None]] = {}  # coloured, held by the stabilizer
        stabilizer = Stabilizer() if self.stabilize else None
        run = todo | _warm_up(plan, todo) if stabilizer else todo
        shot_starts = {shot.start for shot in plan.shots}
        previous = -2
        failed = False

        def items() -> Iterator[WorkItem]:
            for ref, lineart in _prefetched(source, run, ahead=2 * batch):
                strokes = plan.strokes_for(ref.index)
                frames_in_flight[ref.index] = (lineart, strokes)
                yield self._work_item(ref.index, lineart, strokes)

        def finish_and_write(index: int, color: np.ndarray | None, lineart: LineArt,
                             strokes: np.ndarray | None) -> list[str]:
            """Runs in frame order in one thread (a video and the stabilizer need that): the paths written, which
            with the stabilizer are of the frames it finished, a few frames behind this one."""
            nonlocal previous
            if stabilizer is None or color is None:
                return [*flush(), *write(index, color, lineart, strokes)]
            done = flush() if index in shot_starts or index != previous + 1 else []
            waiting[index] = (lineart, strokes)
            finished = stabilizer.push(index, color, coverage_at(lineart, color.shape[:2]), index in plan.keyframes)
            previous = index
            return [*done, *(path for i, c in finished for path in write(i, c, *waiting.pop(i)))]

        def flush() -> list[str]:
            finished = stabilizer.flush() if stabilizer is not None else []
            return [path for i, c in finished for path in write(i, c, *waiting.pop(i))]

        def write(index: int, color: np.ndarray | None, lineart: LineArt, strokes: np.ndarray | None) -> list[str]:
            if index not in todo:  # a frame an earlier run wrote, coloured again only to lead into the next
                return []
            return [str(sink.write(index, self.finish.apply(color, lineart, strokes)))]

        def unless_failed(step: Callable[..., list[str]], *args) -> list[str]:
            """A writer-thread step, skipped once one has failed: the frames after a failure would be finished by
            a stabilizer that missed a frame, and written as done (the run stops with the error anyway)."""
            nonlocal failed
            if failed:
                return []
            try:
                return step(*args)
            except BaseException:
                failed = True
                raise

        def collect(future: Future) -> None:
            nonlocal finished
            for path in future.result():
                written.append(path)
                finished += 1
                if progress:
                    progress("colorize", finished, total)

        # frames are read ahead in one thread and finished and written behind in another (in order, which a
        # video and the stabilizer need), so the network is rarely idle
        with ThreadPoolExecutor(max_workers=1) as writer:
            pending: list[Future] = []
            for chunk in batch_items(items(), batch):
                for item, color in zip(chunk, self._infer(chunk), strict=True):
                    lineart, strokes = frames_in_flight.pop(item.key)
                    pending.append(writer.submit(unless_failed, finish_and_write, item.key, color, lineart, strokes))
                while pending and (pending[0].done() or len(pending) > 2 * batch):
                    collect(pending.pop(0))
            pending.append(writer.submit(unless_failed, flush))  # the last shot's last frames
            for future in pending:
                collect(future)
        sink.close()
        return written


def _video_settings(output: Path, source: FrameSource, codec: str | None, crf: int | None,
                    fps: str | float | Fraction | None) -> Fraction:
    """The frame rate of a video made from frames (24 unless `fps`); settings that could not apply are refused,
    not ignored: codec, crf and fps with a frame output, fps with a video input (it keeps its own rate)."""
    given = [f"--{name}" for name, value in (("codec", codec), ("crf", crf), ("fps", fps)) if value is not None]
    if given and not is_video_path(output):
        raise ConfigError(f"{' and '.join(given)} set how a video is written; {output} is frames")
    if crf is not None and codec not in (None, "h264"):
        raise ConfigError(f"--crf sets the quality of h264; {codec} has none to set")
    if fps is None:
        return Fraction(24)
    if isinstance(source, VideoSource):
        raise ConfigError(f"--fps sets the rate of a video made from frames; {source.path.name} keeps its own")
    try:
        rate = Fraction(str(fps).strip())
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"cannot read frame rate {fps!r}: use e.g. 25, 23.976 or 24000/1001") from None
    if not 1 <= rate <= 1000:
        raise ConfigError(f"frame rate must be from 1 to 1000, not {fps}")
    # video rates are n/1 or n/1001: 23.976023976 (or the float 30000/1001) is 24000/1001, and a fraction with a
    # huge denominator would not fit the container's time base
    return rate.limit_denominator(1001)


def _unit_image(image: np.ndarray) -> np.ndarray:
    """An image array as float32 in [0, 1]: uint8 and uint16 by their full range, floats as they are (which
    must already be in [0, 1]: a float image in 0-255 would read as all lines)."""
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)) or 0 in image.shape:
        raise InputError(f"line art must be an HxW or HxWxC (C 1-4) image, not shape {image.shape}")
    if image.dtype in (np.uint8, np.uint16):
        return image.astype(np.float32) / np.iinfo(image.dtype).max
    if not np.issubdtype(image.dtype, np.floating):
        raise InputError(f"line art must be uint8, uint16 or float in [0, 1], not {image.dtype}")
    if image.size and (np.nanmin(image) < 0.0 or np.nanmax(image) > 1.0):
        raise InputError(f"float line art must lie in [0, 1] (got {np.nanmin(image):g}..{np.nanmax(image):g}); "
                         "divide 0-255 values by 255")
    return image.astype(np.float32)


def _warm_up(plan: Plan, todo: set[int], lead_in: int = LEAD_IN, lead_out: int = WINDOW) -> set[int]:
    """Frames not to write around a frame to do, within its shot: up to `lead_in` frames before it and `lead_out`
    after it.

    A resumed run (or a --frames selection) colours them without writing, so the stabilizer reaches each frame
    to do in the state an uninterrupted run would have (to rounding: see temporal.LEAD_IN): the output does not
    depend on where a run was interrupted, and a frame late in a long shot does not cost the whole shot again.
    """
    lead: set[int] = set()
    for shot in plan.shots:
        for i in (i for i in shot if i in todo):
            lead.update(range(max(shot.start, i - lead_in), min(shot.stop, i + lead_out + 1)))
    return lead - todo


def _prefetched(source: FrameSource, todo: set[int], ahead: int) -> Iterator[tuple]:
    """(ref, lineart) of the frames in `todo`, decoded in a background thread up to `ahead` frames early."""
    if isinstance(source, FolderSource):  # files: read only what is needed, in parallel with the network
        refs = [r for r in source.frames if r.index in todo]
        with ThreadPoolExecutor(max_workers=1) as pool:
            futures: list[tuple] = []
            position = 0
            while position < len(refs) or futures:
                while position < len(refs) and len(futures) < ahead:
                    futures.append((refs[position], pool.submit(read_lineart, refs[position].path)))
                    position += 1
                ref, future = futures.pop(0)
                yield ref, future.result()
        return
    for ref, lineart in source:  # a video decodes in order; frames not in todo are skipped after decoding
        if ref.index in todo:
            yield ref, lineart


def colorize_sequence(source: Path | str, hints: Sequence[HintSpec | str | Path] | HintSpec | str | Path = (),
                      output: Path | str | None = None, *, weights: Path | str | None = None,
                      i2v: Path | str | None = None, resume: bool = False, overwrite: bool = False,
                      progress: ProgressCallback | None = None, preset: str | None = None,
                      **options) -> ColorizeSummary:
    """One call for scripts: load the model (see `Colorizer` for options, `preset` as `--preset`) and colour a
    sequence or video."""
    run_options = {k: options.pop(k) for k in ("frames", "on_missing_frames", "codec", "crf", "fps") if k in options}
    colorizer = Colorizer.from_preset(preset, weights=weights, i2v=i2v, **options)
    return colorizer.colorize_sequence(source, hints, output, resume=resume, overwrite=overwrite, progress=progress,
                                       **run_options)

