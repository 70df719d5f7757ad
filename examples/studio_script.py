"""A studio pipeline script: colour every shot folder of an episode with the Python API.

    python examples/studio_script.py EPISODE_DIR [--engine hybrid] [--device auto]

Expects EPISODE_DIR/<shot>/lineart/ and EPISODE_DIR/<shot>/hints/ (as in examples/shot/) and writes
EPISODE_DIR/<shot>/color/. One model is loaded once and reused for every shot; a shot that fails with a
user error (bad frame, bad hint) is reported and the others go on. Interrupted runs resume.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alacgan_batch import AlacganError, Colorizer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("episode", type=Path)
    parser.add_argument("--engine", default="hybrid", choices=("network", "flat", "hybrid"))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    colorizer = Colorizer(engine=args.engine, device=args.device)
    failed = 0
    for shot in sorted(p for p in args.episode.iterdir() if (p / "lineart").is_dir()):
        hints = [shot / "hints"] if (shot / "hints").is_dir() else []
        try:
            summary = colorizer.colorize_sequence(shot / "lineart", hints, shot / "color", resume=True)
        except AlacganError as exc:
            print(f"{shot.name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{shot.name}: {summary.written} frames written, {summary.skipped} already done, "
              f"{summary.fps:.2f} frames/s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
