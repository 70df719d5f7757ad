"""Speed benchmark: frames/s of the colorize pipeline and the network, as ratios measured in one run.

    python benchmarks/speed.py [--weights PATH] [--frames 12] [--size 512] [--device auto]

Reports, on this machine:
- network time per frame for the bundled (or given) model vs the full-width official architecture;
- network frames/s at batch 1 vs the default batch size;
- end-to-end `Colorizer.colorize_sequence` frames/s (read, infer, compose, write, with read-ahead and
  write-behind threads) vs a plain sequential loop over the same stages;
- peak resident memory of `alacgan video` (flat engine) on a short and a 4x longer video: streaming
  decode/encode and the on-disk plan keep it flat (it grows with the longest shot, not the video).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alacgan_batch import Colorizer  # noqa: E402
from alacgan_batch.checkpoints import ColorizationModel, ModelSpec  # noqa: E402
from alacgan_batch.compose import compose, sketch_at, working_size  # noqa: E402
from alacgan_batch.engine import Engine, WorkItem  # noqa: E402
from alacgan_batch.nets import Generator, GeneratorConfig, LineArtFeatures  # noqa: E402
from alacgan_batch.sequence import read_lineart  # noqa: E402
from alacgan_batch.writer import write_png  # noqa: E402


def timed(fn, repeat: int = 3) -> float:
    fn()  # warm-up: first call allocates and picks kernels
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def network_seconds(engine: Engine, size: int, batch: int) -> float:
    items = [WorkItem(i, np.ones((size, size), np.float32)) for i in range(batch)]
    return timed(lambda: engine.run_batch(items)) / batch


def make_frames(folder: Path, count: int, size: int) -> None:
    from alacgan_batch.synth import make_shot

    shot = make_shot(seed=2_000_000_001, n_frames=count, size=(size, size))
    folder.mkdir(parents=True)
    for i, frame in enumerate(shot.frames):
        cv2.imwrite(str(folder / f"shot.{i + 1:04d}.png"), frame.lineart)


def sequential(colorizer: Colorizer, folder: Path, out: Path) -> None:
    """The same stages with no overlap, one frame at a time."""
    for path in sorted(folder.glob("*.png")):
        lineart = read_lineart(path)
        item = WorkItem(0, sketch_at(lineart, working_size(lineart.size, colorizer.short_side)))
        (color,) = colorizer.engine.run_batch([item])
        write_png(out / path.name, compose(color, lineart))


def video_peak_memory(frames: int, folder: Path) -> float:
    """Peak RSS (MiB) of a separate `alacgan video` process colouring a generated line-art video."""
    import subprocess
    from fractions import Fraction

    from alacgan_batch.synth import make_shot
    from alacgan_batch.video import VideoInfo, VideoWriter

    path = folder / f"take{frames}.mkv"
    info = VideoInfo(width=320, height=240, frame_count=frames, fps=Fraction(24), time_base=Fraction(1, 24),
                     pixel_aspect=Fraction(1), rotation=0, has_alpha=False, has_audio=False, codec="ffv1",
                     pix_fmt="bgr0")
    shot = make_shot(seed=2_000_000_002, n_frames=24, size=(240, 320))
    with VideoWriter(path, info, codec="ffv1") as writer:
        for i in range(frames):  # cycle a 24-frame shot: every 24 frames a cut back to its start
            writer.write(np.repeat(shot.frames[i % 24].lineart[..., None], 3, axis=2))
    # VmHWM (peak RSS of this process image): unlike ru_maxrss it does not carry the parent's peak over exec
    script = ("import sys; from alacgan_batch.cli import main; sys.argv = sys.argv[1:]\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
              "print(hwm, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", script, "alacgan", "video", str(path), "-o",
                             str(folder / f"out{frames}.mkv"), "--codec", "ffv1", "--engine", "flat"],
                            capture_output=True, text=True, check=True)
    return int(result.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    colorizer = Colorizer(weights=args.weights, device=args.device)
    engine = colorizer.engine
    print(f"model {colorizer.model_files.weights} on {engine.device} ({engine.precision_name}), "
          f"torch threads {torch.get_num_threads()}")

    official = ColorizationModel(Generator().eval(), LineArtFeatures(512).eval(),
                                 ModelSpec(GeneratorConfig(), "lineart"), Path("random"))
    official_engine = Engine(official, device=args.device, batch_size=1)
    ours = network_seconds(engine, args.size, 1)
    full = network_seconds(official_engine, args.size, 1)
    print(f"network, {args.size}x{args.size}, batch 1: shipped model {ours:.3f} s/frame, "
          f"official width (ngf 64) {full:.3f} s/frame -> {full / ours:.2f}x faster")
    batched = network_seconds(engine, args.size, engine.batch_size)
    print(f"network, batch {engine.batch_size} vs 1: {batched:.3f} vs {ours:.3f} s/frame -> "
          f"{ours / batched:.2f}x throughput")

    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "lineart"
        make_frames(frames, args.frames, args.size)
        (Path(tmp) / "seq").mkdir()
        start = time.perf_counter()
        sequential(colorizer, frames, Path(tmp) / "seq")
        plain = time.perf_counter() - start
        start = time.perf_counter()
        colorizer.colorize_sequence(frames, output=Path(tmp) / "pipe")
        piped = time.perf_counter() - start
    print(f"end to end, {args.frames} frames: pipeline {args.frames / piped:.2f} frames/s, sequential loop "
          f"{args.frames / plain:.2f} frames/s -> {plain / piped:.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this benchmark process: {peak:.0f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        short, long = video_peak_memory(48, Path(tmp)), video_peak_memory(192, Path(tmp))
    print(f"alacgan video peak memory: 48 frames {short:.0f} MiB, 192 frames {long:.0f} MiB -> "
          f"{long / short:.2f}x for 4x the frames")


if __name__ == "__main__":
    main()
