"""The `alacgan` command: a thin Typer layer over the library. No logic here beyond wiring and reporting.

Exit codes: 0 success, 1 internal error (a bug: rerun with --debug for the traceback), 2 bad usage or
setting, 3 bad input (frames, hints, video, dataset), 4 model file problem, 5 output refused
(would overwrite inputs or earlier results), 130 interrupted by Ctrl-C and 143 stopped by SIGTERM (outputs
so far are complete; --resume).
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .errors import AlacganError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Colour anime line-art frame sequences and videos with AlacGAN.")
hints_app = typer.Typer(no_args_is_help=True, help="Check hints before a long run.")
app.add_typer(hints_app, name="hints")
err = Console(stderr=True, soft_wrap=True)  # errors stay one line, whatever the terminal width
_state = {"debug": False}

WeightsOpt = Annotated[Path | None, typer.Option("--weights", help="Generator file (official .pth or ours "
                                                 ".safetensors). Default: ALACGAN_WEIGHTS, user folder, bundled.")]
I2VOpt = Annotated[Path | None, typer.Option("--i2v", help="Illustration2Vec weights (i2v.pth), for models "
                                             "that use them. Default: ALACGAN_I2V, user folder.")]
HintsOpt = Annotated[list[str] | None, typer.Option("--hints", "-H", help="Hint image or folder; repeat. "
                                                    "`key.png@12` names the frame.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]


class PhaseProgress:
    """Adapts the library's (phase, done, total) callback to Rich bars with frames/s, one per phase."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=err,
        )
        self.tasks: dict[str, tuple[int, int, float]] = {}

    def __enter__(self) -> PhaseProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tasks:
            self.progress.stop()

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if not self.tasks:
            self.progress.start()
        if phase not in self.tasks:
            self.tasks[phase] = (self.progress.add_task(phase, total=total, rate=""), done, now)
        task, first_done, first_time = self.tasks[phase]
        frames, seconds = done - first_done, now - first_time
        rate = f"{frames / seconds:.2f} frames/s" if frames and seconds > 0 else ""
        self.progress.update(task, completed=done, total=total, rate=rate)


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug


def _run_colorize(input: Path, hints: list[str] | None, output: Path | None, weights: Path | None,
                  i2v: Path | None, preset: str | None, settings: dict, run: dict, as_json: bool) -> None:
    from .pipeline import Colorizer
    from .sinks import is_video_path

    video_out = is_video_path(output) if output is not None else is_video_path(input)
    # a video is written whole or not at all; frames are kept one by one
    _state["after_interrupt"] = "no video was written (its temp file is removed); run the command again to start " \
        "over" if video_out else "frames written so far are complete; rerun with --resume to continue"
    colorizer = Colorizer.from_preset(preset, weights=weights, i2v=i2v, **settings)
    if settings.get("lock_hints") and colorizer.engine_name != "network":  # given on purpose, and it does nothing
        _warn(f"--lock-hints is for the network engine; the {colorizer.engine_name} engine fills hinted regions with "
              "their strokes' colour flat")
    if colorizer.model_files is not None:
        files, engine = colorizer.model_files, colorizer.engine
        err.print(f"model: {files.weights} ({files.weights_source}); device {engine.device}, "
                  f"{engine.precision_name}, batch {engine.batch_size}", highlight=False)
    else:
        err.print("engine flat: no network, regions take their hint colours", highlight=False)
        if weights or i2v:  # a flag given on purpose and silently unused would look like it was used
            _warn("--weights/--i2v are not used by the flat engine")
    with PhaseProgress() as progress:
        summary = colorizer.colorize_sequence(input, hints or [], output, progress=progress, **run)
    for shot in summary.unhinted_shots:
        _warn(f"shot {shot} has no hints; coloured without")
    err.print(f"wrote {summary.written} frames to {summary.output} ({summary.skipped} already done, "
              f"{len(summary.keyframes)} keyframes, {summary.shots} shots) in {summary.seconds:.1f} s, "
              f"{summary.fps:.2f} frames/s", highlight=False)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))


@app.command()
def colorize(
    input: Annotated[Path, typer.Argument(help="Folder of line-art frames, a pattern (shot.####.png), or one "
                                          "image.")],
    hints: HintsOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output folder or pattern "
                                                "(out/shot.####.png), or a video file. Default <input>_color.")]
    = None,
    weights: WeightsOpt = None,
    i2v: I2VOpt = None,
    preset: Annotated[str | None, typer.Option(help="Named settings from presets/ (draft, final, paper, flat).")]
    = None,
    engine: Annotated[str | None, typer.Option(help="network (default), flat (no network: regions take their "
                                               "hint colour) or hybrid (hinted regions flat, the rest network).")]
    = None,
    propagate: Annotated[bool | None, typer.Option("--propagate/--no-propagate", help="Carry keyframe strokes to "
                                                   "every frame of their shot (default on).")] = None,
    flatten: Annotated[bool | None, typer.Option("--flatten/--no-flatten", help="One flat colour per region.")]
    = None,
    stabilize: Annotated[bool | None, typer.Option("--stabilize/--no-stabilize", help="Hold each region's network "
                                                   "colour from frame to frame (default on).")] = None,
    lock_hints: Annotated[bool | None, typer.Option("--lock-hints/--no-lock-hints", help="Network engine: shift "
                                                    "each region hinted in one colour to exactly that colour, "
                                                    "keeping the network's shading (default on).")] = None,
    palette: Annotated[Path | None, typer.Option(help="Model-sheet JSON: snap each region to its nearest colour.")]
    = None,
    background: Annotated[str | None, typer.Option(help="white (default), transparent (background region "
                                                   "clear), keep (the input's alpha).")] = None,
    layers: Annotated[bool | None, typer.Option("--layers/--no-layers", help="Also write line, flat and "
                                                "shading layers (PNG with alpha) under <output>/layers/.")] = None,
    frames: Annotated[str | None, typer.Option(help="Frames to colour, e.g. 1001-1100x2.")] = None,
    on_missing_frames: Annotated[str, typer.Option(help="A frame missing from a numbered range: error or skip.")]
    = "error",
    on_missing_hints: Annotated[str | None, typer.Option(help="A shot with no hints: auto (colour without) or "
                                                         "error.")] = None,
    cuts: Annotated[bool | None, typer.Option("--cuts/--no-cuts", help="Detect shot cuts (default: for videos; "
                                              "a frame folder is one shot).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Frames per batch (default by device).", min=1)] = None,
    precision: Annotated[str | None, typer.Option(help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16.")]
    = None,
    short_side: Annotated[int | None, typer.Option(
        help="Working resolution's short side (default: what the model was trained at, 512 for the paper's; "
             "0 keeps the frames' size).")] = None,
    lines: Annotated[bool | None, typer.Option("--lines/--no-lines", help="Lay the drawn lines over the colour.")]
    = None,
    codec: Annotated[str | None, typer.Option(help="For a video output: h264 (default), prores4444, png, ffv1.")]
    = None,
    crf: Annotated[int | None, typer.Option(help="For h264 output: quality (0-51, lower is better; default 18).")]
    = None,
    fps: Annotated[str | None, typer.Option(help="For a video output: its frame rate, e.g. 25, 23.976 or "
                                            "24000/1001 (default 24).")] = None,
    resume: Annotated[bool, typer.Option(help="Finish an interrupted run into the same folder.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace frames (or the video) an earlier run wrote.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Colour a frame sequence; strokes on keyframes guide the colours of the whole shot."""
    settings = {
        "engine": engine, "propagate": propagate, "flatten": flatten, "stabilize": stabilize, "lock_hints": lock_hints,
        "palette": palette, "background": background, "layers": layers, "on_missing_hints": on_missing_hints,
        "detect_cuts": cuts, "device": device, "batch_size": batch_size, "precision": precision,
        "short_side": short_side, "overlay_lines": lines}
    run = {"frames": frames, "on_missing_frames": on_missing_frames, "codec": codec, "crf": crf, "fps": fps,
           "resume": resume, "overwrite": overwrite}
    _run_colorize(input, hints, output, weights, i2v, preset, settings, run, as_json)


@app.command()
def video(
    input: Annotated[Path, typer.Argument(help="Video of line-art frames.")],
    hints: HintsOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Video file, or a frame pattern "
                                                "(frames/shot.####.png). Default <input>_color.<ext>.")] = None,
    codec: Annotated[str | None, typer.Option(help="h264 (default), prores4444 (alpha), png (PNG-in-MOV, alpha), "
                                              "ffv1.")] = None,
    crf: Annotated[int | None, typer.Option(help="h264 quality (0-51, lower is better; default 18).")] = None,
    weights: WeightsOpt = None,
    i2v: I2VOpt = None,
    preset: Annotated[str | None, typer.Option(help="Named settings from presets/.")] = None,
    engine: Annotated[str | None, typer.Option(help="network, flat or hybrid.")] = None,
    on_missing_hints: Annotated[str, typer.Option(help="A shot with no hints: auto (colour without) or error.")]
    = "auto",
    background: Annotated[str | None, typer.Option(help="white, transparent, keep.")] = None,
    cuts: Annotated[bool, typer.Option("--cuts/--no-cuts", help="Detect shot cuts (default on).")] = True,
    propagate: Annotated[bool | None, typer.Option("--propagate/--no-propagate", help="Carry keyframe strokes to "
                                                   "every frame of their shot (default on).")] = None,
    flatten: Annotated[bool | None, typer.Option("--flatten/--no-flatten", help="One flat colour per region.")]
    = None,
    stabilize: Annotated[bool | None, typer.Option("--stabilize/--no-stabilize", help="Hold region colours from "
                                                   "frame to frame (default on).")] = None,
    lock_hints: Annotated[bool | None, typer.Option("--lock-hints/--no-lock-hints", help="Shift each region "
                                                    "hinted in one colour to exactly that colour (default on).")]
    = None,
    palette: Annotated[Path | None, typer.Option(help="Model-sheet JSON: snap each region to its nearest colour.")]
    = None,
    layers: Annotated[bool | None, typer.Option("--layers/--no-layers", help="Also write line, flat and shading "
                                                "layers under <output folder>/layers/ (frame outputs only).")]
    = None,
    lines: Annotated[bool | None, typer.Option("--lines/--no-lines", help="Lay the drawn lines over the colour.")]
    = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Frames per batch (default by device).", min=1)] = None,
    precision: Annotated[str | None, typer.Option(help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16.")]
    = None,
    short_side: Annotated[int | None, typer.Option(help="Working resolution's short side (default: the model's; 0 "
                                                   "keeps the frames' size).")] = None,
    resume: Annotated[bool, typer.Option(help="Finish an interrupted run into the same frame pattern (a video "
                                         "output starts over).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output video, or frames an earlier run "
                                            "wrote.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Colour a video; `@N` on a hint counts frames from 0. Shot cuts stop hint propagation."""
    settings = {
        "engine": engine, "propagate": propagate, "flatten": flatten, "stabilize": stabilize, "lock_hints": lock_hints,
        "palette": palette, "background": background, "layers": layers, "on_missing_hints": on_missing_hints,
        "detect_cuts": cuts, "device": device, "batch_size": batch_size, "precision": precision,
        "short_side": short_side, "overlay_lines": lines}
    run = {"codec": codec, "crf": crf, "resume": resume, "overwrite": overwrite}
    _run_colorize(input, hints, output, weights, i2v, preset, settings, run, as_json)


@hints_app.command("preview")
def hints_preview(
    input: Annotated[Path, typer.Argument(help="Frames (folder or pattern) or a video.")],
    hints: HintsOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Contact sheet PNG.")] = Path("hints-preview.png"),
    columns: Annotated[int, typer.Option(help="Frames per row.", min=1)] = 6,
    propagate: Annotated[bool, typer.Option("--propagate/--no-propagate")] = True,
) -> None:
    """A contact sheet of every frame with its propagated strokes over the line art; regions no stroke reaches
    are hatched orange and their frames listed."""
    from .preview import contact_sheet

    with PhaseProgress() as progress:
        sheet = contact_sheet(input, hints or [], output, columns=columns, propagate=propagate, progress=progress)
    err.print(f"wrote {sheet.path}", highlight=False)
    if sheet.bare_frames:
        shown = ", ".join(sheet.bare_frames[:8]) + (", ..." if len(sheet.bare_frames) > 8 else "")
        err.print(f"{len(sheet.bare_frames)} frame(s) hold a region no stroke reaches (hatched orange): {shown}; "
                  "a hint drawn on one of them colours it there and in its neighbours", highlight=False)


@app.command()
def info(weights: WeightsOpt = None, i2v: I2VOpt = None, as_json: JsonOpt = False) -> None:
    """Device, torch/CUDA, and which model files would be used, from where."""
    import platform

    import torch

    from . import __version__
    from .checkpoints import load_model, resolve_model_files, user_model_dir

    files = resolve_model_files(weights, i2v)
    report = {
        "alacgan_batch": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_threads": torch.get_num_threads(),
        "weights": str(files.weights) if files.weights else None,
        "weights_source": files.weights_source,
        "i2v": str(files.i2v) if files.i2v else None,
        "i2v_source": files.i2v_source,
        "user_model_dir": str(user_model_dir()),
    }
    if files.weights:
        try:
            model = load_model(files.weights, files.i2v)
            n_params = sum(p.numel() for p in model.generator.parameters())
            report["model"] = {"name": model.spec.name, "features": model.spec.features,
                               "ngf": model.spec.generator.ngf, "generator_parameters": n_params}
        except AlacganError as exc:
            report["model_error"] = str(exc)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        err.print(f"[bold]{key}[/bold]: {value}", highlight=False)


@app.command()
def synth(
    output: Annotated[Path, typer.Argument(help="Folder for the generated shots.")],
    shots: Annotated[int, typer.Option(help="How many shots.", min=1)] = 10,
    frames: Annotated[int, typer.Option(help="Frames per shot (1: single images).", min=1)] = 1,
    size: Annotated[str, typer.Option(help="HEIGHTxWIDTH, each 64 to 4096.")] = "256x256",
    seed: Annotated[int, typer.Option(min=0)] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace shots already in the folder.")] = False,
) -> None:
    """Procedural cel shots with ground truth (line art, colour, flat colour, labels, keyframe hints)."""
    from .errors import ConfigError, OutputError
    from .synth import make_dataset

    try:
        height, width = (int(v) for v in size.lower().split("x"))
    except ValueError as exc:
        raise ConfigError(f"--size must be HEIGHTxWIDTH, not {size!r}") from exc
    if not (64 <= height <= 4096 and 64 <= width <= 4096):  # the drawn character needs room; memory bounds it
        raise ConfigError(f"--size {size}: each side must be 64 to 4096 px")
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {output} exists and is not a folder")
    earlier = sorted(output.glob("shot_*")) if output.is_dir() else []
    if earlier and not overwrite:  # a shorter rerun would leave the old frames mixed into its shots
        raise OutputError(f"{output} already holds {len(earlier)} shots; pass --overwrite or choose another folder")
    for shot in earlier:
        shutil.rmtree(shot)
    paths = make_dataset(output, shots, seed=seed, size=(height, width), frames=frames)
    err.print(f"wrote {len(paths)} shots of {frames} frames to {output}", highlight=False)


def _overrides(values: list[str] | None) -> dict[str, str]:
    from .errors import ConfigError

    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set takes KEY=VALUE, not {item!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


@app.command()
def prepare(
    source: Annotated[Path, typer.Argument(help="Folder of colour illustrations.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Dataset folder (sketches + manifest).")],
    size: Annotated[int, typer.Option(help="Short side after resizing (§4.2: 512).")] = 512,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """XDoG sketches (§4.1) for a folder of illustrations; cached and resumable."""
    from .train import prepare_dataset

    summary = prepare_dataset(source, output, size=size, seed=seed)
    err.print(f"prepared {output}: " + ", ".join(f"{k} {v}" for k, v in summary.items()), highlight=False)


@app.command()
def train(
    data: Annotated[str, typer.Argument(help="Prepared dataset folder, or 'synth' for procedural shots.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder (checkpoints, metrics, samples).")],
    recipe: Annotated[str, typer.Option(help="training/<name>.toml (paper, starter, starter-full, "
                                         "starter-spread, tiny) or a path.")] = "starter",
    resume: Annotated[bool, typer.Option(help="Continue the run in --output where it stopped.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    vgg16: Annotated[Path | None, typer.Option(help="vgg16-397923af.pth for the perceptual loss (§3.2).")] = None,
    i2v: I2VOpt = None,
    init: Annotated[Path | None, typer.Option(help="Start G (and own F1) from this run folder or checkpoint: "
                                              "a second training stage.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a recipe setting: KEY=VALUE.")] = None,
) -> None:
    """The paper's training (§3, §4.2), resumable; under torchrun, one process per GPU."""
    from .train import load_recipe
    from .train import train as run_training

    overrides = _overrides(set_)
    if vgg16:
        overrides["vgg16"] = str(vgg16)
    if i2v:
        overrides["i2v"] = str(i2v)
    if init:
        overrides["init"] = str(init)
    config = load_recipe(recipe, overrides)
    source = None if data == "synth" else Path(data)
    summary = run_training(config, source, output, resume=resume, device=device)
    state = "interrupted" if summary.get("interrupted") else "stopped at its time limit" \
        if summary.get("stopped_by_time_limit") else "finished"
    err.print(f"training {state} at step {summary.get('step')} in {summary.get('wall_s')} s; "
              f"checkpoint {summary.get('checkpoint')}", highlight=False)
    if summary.get("interrupted"):  # saved and resumable, but not done: a job scheduler must not read success
        err.print("rerun with --resume to continue", highlight=False)
        sys.exit(128 + (summary.get("stop_signal") or signal.SIGINT))


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="A training run folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the model file and its card.")],
    name: Annotated[str | None, typer.Option(help="Model name (file stem).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a model file, card or SHA256SUMS already there.")] = False,
) -> None:
    """Write a run's generator as a model file (.safetensors + .json) with its model card."""
    from .train import export_run

    path = export_run(run, output, name=name, overwrite=overwrite)
    err.print(f"wrote {path}", highlight=False)


def _stop_on_sigterm() -> None:
    """A render farm stops a job with SIGTERM: end it as Ctrl-C does (finished frames kept, temp files removed)."""
    def stop(signum: int, frame: object) -> None:
        _state["signal"] = signum
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _warn(message: object) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False)


class _WarningLines(logging.Handler):
    """The library's log warnings (video.py) as the command's own `warning:` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        _warn(record.getMessage())


def _show_warnings_as_lines() -> None:
    """Python warnings from the library (a skipped unreadable image) print as one `warning:` line each, not as
    Python's two lines with a source path; data workers forked later inherit it."""
    warnings.showwarning = lambda message, *args, **kwargs: _warn(message)
    library = logging.getLogger("alacgan_batch")
    if not any(isinstance(h, _WarningLines) for h in library.handlers):
        library.addHandler(_WarningLines(logging.WARNING))
        library.propagate = False


def _load_libraries() -> None:
    """Import the library (torch, OpenCV, PyAV, SciPy) with Ctrl-C and SIGTERM held until it is loaded, then
    act on one.

    A KeyboardInterrupt raised while torch initialises can pass through code it runs with PyRun_String, which
    leaves CPython's 'unhandled Ctrl-C' flag set: the process then ends killed by SIGINT (status -2, not 130)
    after its clean stop, or after finishing the run when torch swallowed the interrupt. Held, the signal is
    only recorded there. A signal the command was started ignoring (SIGINT in a shell's background job) stays
    ignored, as Python leaves it for the rest of the run."""
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: held.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        from . import pipeline, train, video  # noqa: F401
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if held:
        _state["signal"] = held[0]
        raise KeyboardInterrupt


def _interrupted() -> NoReturn:
    signum = _state.get("signal", signal.SIGINT)
    after = _state.get("after_interrupt")
    err.print(f"interrupted ({signal.Signals(signum).name})" + (f": {after}" if after else ""), highlight=False)
    sys.exit(128 + signum)


def main() -> None:
    """Entry point: map user errors to one line and an exit code; keep tracebacks for bugs behind --debug."""
    _show_warnings_as_lines()
    _stop_on_sigterm()  # last before the try: a signal once the command catches SIGTERM lands inside it
    try:
        if not {"--help", "-h"} & set(sys.argv[1:]) and len(sys.argv) > 1:  # help needs no torch: it stays quick
            _load_libraries()
        import cv2

        # our errors name the file and what is wrong in one line; OpenCV's own warnings would add a second
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        code = app(standalone_mode=False)  # returns the exit code of a typer.Exit, 130 for Ctrl-C
    except AlacganError as exc:
        if _state["debug"]:
            raise
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _interrupted()
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        exc.show()
        sys.exit(getattr(exc, "exit_code", 2))
    except Exception as exc:
        if _state["debug"]:
            raise
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))} (rerun with --debug for the "
                  "traceback)", highlight=False)
        sys.exit(1)
    if code == 130:
        _interrupted()
    if isinstance(code, int) and code:
        sys.exit(code)
