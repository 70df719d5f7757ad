"""Sequence quality: hints propagated over held-out procedural shots, coloured through the real pipeline.

For each shot (seeds from 1.1 * 10^9 on; training uses seeds < 10^6) the first and last frames carry the hint strokes
an artist would draw; every frame is coloured by `Colorizer.colorize_sequence` and scored on the in-between
frames (metrics.py, CIE76 deltaE, paper pixels only):

- region_accuracy: share of region area whose median output colour is within 15 of the ground truth;
- propagation_accuracy: share of propagated stroke pixels that land in the region of their colour;
- flicker: mean deltaE of a region's median colour between consecutive frames (the issue's goal: every
  region counts alike, a sliver of a few pixels beside an occluder as much as a torso);
- flicker by area: the same, each region weighted by its area (what a viewer sees more of);
- "+-": the standard error of the flicker, from its spread over the shots. A few shots with a fast occluder
  give most of it, so 16 shots pin the mean down to about +-0.35 dE at 12 frames (+-0.6 on the set the README
  also quotes), 96 shots (--shots 96 --jobs 2) to about +-0.2, 480 shots to about +-0.08 (flat: 16 min on 2 cores);
- seconds per frame for the whole pipeline (plan + colour + write).

    python benchmarks/sequences.py [--engines flat,network,network+nolock,network+flatten,hybrid]
        [--shots 16] [--frames 12,24] [--first-seed 1100000000] [--jobs 1]

--first-seed picks another set of held-out shots (the README also quotes 1200000100). --jobs N scores N shots at
once in separate processes (same figures; the seconds per frame are then those of a process sharing the cores).

An engine name may carry options after "+": "network+flatten" (--flatten), "network+nostabilize"
(--no-stabilize: the network's colours as they come, frame by frame), "network+nolock" (--no-lock-hints:
hinted regions keep the network's colour instead of being shifted to their strokes'); several combine, as in
"network+nolock+nostabilize".
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alacgan_batch import metrics, synth  # noqa: E402
from alacgan_batch.pipeline import Colorizer  # noqa: E402
from alacgan_batch.plan import PlanOptions, build_plan  # noqa: E402
from alacgan_batch.sequence import read_image  # noqa: E402
from alacgan_batch.sources import FolderSource  # noqa: E402
from alacgan_batch.train.data import TRAIN_SEED_LIMIT  # noqa: E402

SEQ_SEED_BASE = 1_100_000_000
GOALS = {"flat": 0.90, "network": 0.85, "propagation": 0.95, "flicker": 2.0}


def score_shot(colorizer: Colorizer, seed: int, frames: int, size: int) -> dict:
    shot = synth.make_shot(seed, n_frames=frames, size=(size, size), keyframes=(0, -1))
    with tempfile.TemporaryDirectory() as tmp:
        synth.write_shot(shot, Path(tmp), prefix="shot", start=1)
        start = time.perf_counter()
        colorizer.colorize_sequence(Path(tmp) / "lineart", [Path(tmp) / "hints"], Path(tmp) / "out")
        seconds = (time.perf_counter() - start) / frames
        outputs = []
        for i in range(frames):
            image = read_image(Path(tmp) / "out" / f"shot.{i + 1:04d}.png")
            if image.shape[2] == 4:  # flat engine: regions without hints are transparent: seen on white paper
                image = image[..., :3] * image[..., 3:] + (1 - image[..., 3:])
            outputs.append(np.round(image * 255).astype(np.uint8))
        plan = build_plan(FolderSource.open(Path(tmp) / "lineart"), [Path(tmp) / "hints"],
                          PlanOptions(short_side=0))
        strokes = [plan.strokes_for(i) for i in range(frames)]
        plan.cleanup()
    masks = [metrics.non_line_mask(f.lineart) for f in shot.frames]
    inner = range(1, frames - 1)
    region = [metrics.region_accuracy(outputs[i], shot.frames[i].part_colors, shot.frames[i].labels, mask=masks[i])
              for i in inner]
    propagation = [metrics.propagation_accuracy(strokes[i], shot.frames[i].labels, shot.frames[i].part_colors)
                   for i in inner if strokes[i] is not None]
    return {"seed": seed, "region_accuracy": float(np.nanmean(region)),
            "propagation_accuracy": float(np.nanmean(propagation)) if propagation else float("nan"),
            "flicker": float(metrics.flicker(outputs, [f.labels for f in shot.frames], masks)),
            "flicker_by_area": float(metrics.flicker(outputs, [f.labels for f in shot.frames], masks, by_area=True)),
            "seconds_per_frame": seconds}


def make_colorizer(engine: str, weights: Path | None = None) -> Colorizer:
    # short_side 0: score at the shots' own size (the synth shots are drawn at the training scale)
    name, *extras = engine.split("+")
    unknown = set(extras) - {"flatten", "nostabilize", "nolock"}
    if unknown:
        raise SystemExit(f"unknown engine option(s) {', '.join(sorted(unknown))} in {engine!r}")
    return Colorizer(weights=weights, engine=name, short_side=0, device="cpu", flatten="flatten" in extras,
                     stabilize="nostabilize" not in extras, lock_hints="nolock" not in extras)


_worker_colorizer: Colorizer | None = None  # one per worker process of --jobs, built once


def _start_worker(engine: str, weights: Path | None, threads: int) -> None:
    global _worker_colorizer
    torch.set_num_threads(threads)  # the jobs share the cores instead of each taking them all
    _worker_colorizer = make_colorizer(engine, weights)


def _score_in_worker(seed: int, frames: int, size: int) -> dict:
    assert _worker_colorizer is not None
    return score_shot(_worker_colorizer, seed, frames, size)


def run(engine: str, shots: int, frames: int, size: int, weights: Path | None = None,
        first_seed: int = SEQ_SEED_BASE, jobs: int = 1) -> dict:
    seeds = [first_seed + n for n in range(shots)]
    if jobs > 1:  # shots are independent: each worker scores whole shots, in seed order
        threads = max(1, torch.get_num_threads() // jobs)
        with multiprocessing.get_context("spawn").Pool(jobs, _start_worker, (engine, weights, threads)) as pool:
            rows = pool.starmap(_score_in_worker, [(seed, frames, size) for seed in seeds])
    else:
        colorizer = make_colorizer(engine, weights)
        rows = [score_shot(colorizer, seed, frames, size) for seed in seeds]
    keys = ("region_accuracy", "propagation_accuracy", "flicker", "flicker_by_area", "seconds_per_frame")
    per_shot = np.array([r["flicker"] for r in rows])
    per_shot = per_shot[~np.isnan(per_shot)]
    spread = float(per_shot.std(ddof=1) / np.sqrt(len(per_shot))) if len(per_shot) > 1 else float("nan")
    return {"engine": engine, "shots": shots, "frames": frames, "size": size,
            **{k: float(np.nanmean([r[k] for r in rows])) for k in keys}, "flicker_standard_error": spread,
            "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="flat,network,network+nolock,network+flatten,hybrid")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--frames", default="12,24")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--first-seed", type=int, default=SEQ_SEED_BASE,
                        help=f"seed of the first shot (held out: >= {TRAIN_SEED_LIMIT})")
    parser.add_argument("--jobs", type=int, default=1,
                        help="shots scored in this many processes at once (the cores are shared between them)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.first_seed < TRAIN_SEED_LIMIT:
        parser.error(f"--first-seed must be >= {TRAIN_SEED_LIMIT}: lower seeds are training frames")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    results = [run(engine, args.shots, int(frames), args.size, args.weights, args.first_seed, args.jobs)
               for frames in args.frames.split(",") for engine in args.engines.split(",")]
    print(f"{'engine':<20} {'frames':>6} {'region acc':>10} {'propagation':>11} {'flicker dE':>10} {'+-':>5} "
          f"{'by area':>8} {'s/frame':>8}")
    for r in results:
        print(f"{r['engine']:<20} {r['frames']:>6} {r['region_accuracy']:>10.3f} {r['propagation_accuracy']:>11.3f} "
              f"{r['flicker']:>10.2f} {r['flicker_standard_error']:>5.2f} {r['flicker_by_area']:>8.2f} "
              f"{r['seconds_per_frame']:>8.2f}")
    print(f"goals: region accuracy >= {GOALS['flat']} (flat), >= {GOALS['network']} (network); propagation >= "
          f"{GOALS['propagation']}; flicker < {GOALS['flicker']} dE (+-: standard error over the shots)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
