"""Run by tests/test_train.py under `python -m torch.distributed.run --nproc-per-node 2`: the torchrun path.

Each rank trains the tiny recipe for a few steps (gloo on CPU) and writes its summary, which carries a
fingerprint of the rank's weights, to OUT/rank<RANK>.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alacgan_batch.train import load_recipe, train  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    steps = sys.argv[2] if len(sys.argv) > 2 else "2"
    summary = train(load_recipe("tiny", {"steps": steps}), None, out / "run", device="cpu", progress=False)
    (out / f"rank{os.environ['RANK']}.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
