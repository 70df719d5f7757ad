"""Colour quality of a model on held-out procedural shots: does it follow the hints, and is it right?

For each shot (seeds >= 10^9; training uses seeds < 10^6) the keyframes are coloured from their
stroke hints, and two area-weighted shares are reported (metrics.py, CIE76 deltaE <= 15, paper pixels
only, i.e. lines grown by 1 px are left out because ink is drawn over the output):

- hint_region_accuracy: hinted regions whose median output colour matches the hint colour;
- region_accuracy: all regions whose median output colour matches the ground-truth flat part colour.

    python benchmarks/quality.py [--weights model/alacgan-starter.safetensors] [--shots 20] [--size 256]
                                 [--json out.json] [--time512]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alacgan_batch import metrics, synth  # noqa: E402
from alacgan_batch.checkpoints import ColorizationModel, load_model  # noqa: E402
from alacgan_batch.hints import spread_strokes  # noqa: E402
from alacgan_batch.pipeline import Colorizer  # noqa: E402

BENCH_SEED_BASE = 1_000_000_000  # never used in training (training seeds < 10^6, validation 5 * 10^8 + i)
GOAL = 0.85  # shipped-model target for hint_region_accuracy
DEFAULT_WEIGHTS = ROOT / "model" / "alacgan-starter.safetensors"


def colorize(colorizer: Colorizer, lineart: np.ndarray, hint_rgba: np.ndarray) -> np.ndarray:
    """One frame through the colorize pipeline at its own size, raw network colour (no line overlay)."""
    return colorizer.colorize_image(lineart, hint_rgba)


@torch.no_grad()
def time_512(model: ColorizationModel, repeats: int = 3) -> float:
    """Median seconds for F1 + G on one 512x512 frame (after one warm-up run)."""
    sketch = torch.zeros(1, 1, 512, 512)
    hint = torch.zeros(1, 4, 128, 128)
    model.generator(sketch, hint, model.features(sketch))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.generator(sketch, hint, model.features(sketch))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_spread_512(repeats: int = 3) -> float:
    """Median seconds to spread one 512x512 frame's strokes over its regions (hints.spread_strokes)."""
    frame = synth.make_frame(BENCH_SEED_BASE, size=(512, 512))
    rgba = synth.draw_hint_strokes(frame, np.random.default_rng(0))
    rgb, mask = rgba[..., :3] / 255.0, (rgba[..., 3] > 127).astype(np.float32)
    sketch = frame.lineart.astype(np.float32) / 255.0
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        spread_strokes(rgb, mask, sketch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(weights: Path, shots: int, size: int, frames: int = 2) -> dict:
    # the model alone: hinted regions are not shifted to their strokes' colour afterwards (--no-lock-hints)
    colorizer = Colorizer(weights=weights, device="cpu", short_side=0, overlay_lines=False, lock_hints=False)
    rows = []
    for n in range(shots):
        seed = BENCH_SEED_BASE + n
        shot = synth.make_shot(seed, n_frames=frames, size=(size, size))
        for index, rgba in sorted(shot.hints.items()):
            frame = shot.frames[index]
            output = colorize(colorizer, frame.lineart, rgba)
            paper = metrics.non_line_mask(frame.lineart)
            rows.append({
                "seed": seed, "frame": index,
                "hint_region_accuracy": metrics.hint_region_accuracy(output, rgba, frame.labels, mask=paper),
                "region_accuracy": metrics.region_accuracy(output, frame.part_colors, frame.labels, mask=paper),
            })
    summary = {
        "weights": str(weights), "shots": shots, "keyframes": len(rows), "size": size, "goal": GOAL,
        "hint_region_accuracy": float(np.nanmean([r["hint_region_accuracy"] for r in rows])),
        "region_accuracy": float(np.nanmean([r["region_accuracy"] for r in rows])),
        "threads": torch.get_num_threads(),
    }
    return {"summary": summary, "keyframes": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--shots", type=int, default=20)
    parser.add_argument("--size", type=int, default=256, choices=(256, 512))
    parser.add_argument("--frames", type=int, default=2, help="frames per shot (keyframes are the first and last)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--time512", action="store_true", help="also time one 512x512 frame (and its hint spread)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args.weights, args.shots, args.size, args.frames)
    if args.time512:
        model = load_model(args.weights)
        result["summary"]["seconds_per_frame_512"] = time_512(model)
        if model.spec.hint_spread:  # the engine also spreads a hinted frame's strokes for this model
            result["summary"]["spread_seconds_512"] = time_spread_512()
    print(f"{'seed':>12} {'frame':>5} {'hint acc':>9} {'region acc':>10}")
    for r in result["keyframes"]:
        print(f"{r['seed']:>12} {r['frame']:>5} {r['hint_region_accuracy']:>9.3f} {r['region_accuracy']:>10.3f}")
    s = result["summary"]
    print(f"\n{s['keyframes']} keyframes of {s['shots']} shots at {s['size']}x{s['size']}: "
          f"hint_region_accuracy {s['hint_region_accuracy']:.3f} (goal {GOAL}), "
          f"region_accuracy {s['region_accuracy']:.3f}"
          + (f", 512x512 frame {s['seconds_per_frame_512']:.2f} s" if "seconds_per_frame_512" in s else "")
          + (f" + {s['spread_seconds_512']:.3f} s hint spread" if "spread_seconds_512" in s else ""))
    print(json.dumps(s))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
