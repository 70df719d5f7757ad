"""Regenerate the bundled example shot (examples/shot/) from the procedural cel generator.

    python examples/make_shot.py [--seed 7] [--frames 24] [--size 360x640]

Writes lineart/ (the frames to colour), hints/ (strokes on the first and last frame), and the ground truth
under truth/ (color/, flat/, labels/, shot.json) to compare results against.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from alacgan_batch.synth import make_shot, write_shot

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", default="360x640", help="HEIGHTxWIDTH")
    parser.add_argument("--out", type=Path, default=HERE / "shot")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    if args.out.exists():
        shutil.rmtree(args.out)
    shot = make_shot(args.seed, n_frames=args.frames, size=(height, width), keyframes=(0, -1))
    write_shot(shot, args.out, prefix="shot", start=1)
    truth = args.out / "truth"
    truth.mkdir()
    for name in ("color", "flat", "labels", "shot.json"):  # keep color/ free for the user's output
        (args.out / name).rename(truth / name)
    print(f"wrote {args.frames} frames of {width}x{height} to {args.out}")


if __name__ == "__main__":
    main()
