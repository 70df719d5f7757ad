"""The `alacgan` command: a thin Typer layer over the library. No logic here beyond wiring and reporting.

Exit codes: 0 success, 1 internal error (a bug: rerun with --debug for the traceback), 2 bad usage or
setting, 3 bad input (frames, hints, video, dataset), 4 model file problem, 5 output refused
(would overwrite inputs or earlier results), 130 interrupted (outputs so far are complete; --resume).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .errors import AlacganError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Colour anime line-art frame sequences and videos with AlacGAN.")
err = Console(stderr=True, soft_wrap=True)  # errors stay one line, whatever the width
_state = {"debug": False}

WeightsOpt = Annotated[Path | None, typer.Option("--weights", help="Generator file (official .pth or ours "
                                                 ".safetensors). Default: ALACGAN_WEIGHTS, user folder, bundled.")]
I2VOpt = Annotated[Path | None, typer.Option("--i2v", help="Illustration2Vec weights (i2v.pth), for models "
                                             "that use them. Default: ALACGAN_I2V, user folder.")]


def _progress(description: str) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=err, transient=False,
    )


class FrameProgress:
    """Adapts the library's (done, total) callback to a Rich bar with frames/s, shown once work starts."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.progress: Progress | None = None
        self.first: tuple[int, float] = (0, 0.0)

    def __enter__(self) -> FrameProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, done: int, total: int) -> None:
        import time

        now = time.perf_counter()
        if self.progress is None:
            self.progress = _progress(self.description)
            self.progress.start()
            self.task = self.progress.add_task(self.description, total=total, rate="")
            self.first = (done, now)
        frames, seconds = done - self.first[0], now - self.first[1]
        rate = f"{frames / seconds:.2f} frames/s" if frames and seconds > 0 else ""
        self.progress.update(self.task, completed=done, total=total, rate=rate)


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug


@app.command()
def colorize(
    input: Annotated[Path, typer.Argument(help="Folder of line-art frames (or one image).")],
    hints: Annotated[list[str] | None, typer.Option("--hints", "-H", help="Hint image or folder; repeat. "
                                                    "`key.png@12` names the frame.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output folder (default <input>_color).")]
    = None,
    weights: WeightsOpt = None,
    i2v: I2VOpt = None,
    preset: Annotated[str | None, typer.Option(help="Named settings from presets/ (draft, final, paper).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Frames per batch (default by device).")] = None,
    precision: Annotated[str | None, typer.Option(help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16.")]
    = None,
    short_side: Annotated[int | None, typer.Option(help="Working resolution's short side (default 512).")] = None,
    lines: Annotated[bool | None, typer.Option("--lines/--no-lines", help="Lay the drawn lines over the colour.")]
    = None,
    resume: Annotated[bool, typer.Option(help="Finish an interrupted run into the same folder.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace frames an earlier run wrote.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Colour a frame sequence; hints on keyframes guide the colours."""
    from .pipeline import Colorizer
    from .presets import load_preset

    settings = {"device": "auto", "short_side": 512, "overlay_lines": True, "precision": "auto", "batch_size": None}
    if preset:
        settings.update(load_preset(preset))
    given = {"device": device, "short_side": short_side, "overlay_lines": lines, "precision": precision,
             "batch_size": batch_size}
    settings.update({k: v for k, v in given.items() if v is not None})

    colorizer = Colorizer(weights=weights, i2v=i2v, **settings)
    files = colorizer.model_files
    err.print(f"model: {files.weights} ({files.weights_source}); device {colorizer.engine.device}, "
              f"{colorizer.engine.precision_name}, batch {colorizer.engine.batch_size}")
    with FrameProgress("colorize") as progress:
        summary = colorizer.colorize_sequence(input, hints or [], output, resume=resume, overwrite=overwrite,
                                              progress=progress)
    err.print(f"wrote {summary.written} frames to {summary.output} ({summary.skipped} already done, "
              f"{len(summary.keyframes)} keyframes) in {summary.seconds:.1f} s, {summary.fps:.2f} frames/s")
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))


@app.command()
def info(
    weights: WeightsOpt = None,
    i2v: I2VOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
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
        err.print(f"[bold]{key}[/bold]: {value}")


def main() -> None:
    """Entry point: map user errors to one line and an exit code; keep tracebacks for bugs behind --debug."""
    try:
        app(standalone_mode=False)
    except AlacganError as exc:
        if _state["debug"]:
            raise
        err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted: frames written so far are complete; rerun with --resume to continue")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if _state["debug"]:
            raise
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                  highlight=False)
        sys.exit(1)
