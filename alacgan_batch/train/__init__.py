"""The paper's training (§3.1, §3.2, §4.1, §4.2) as a library: recipes, data, losses, the loop, export.

Entry points (the CLI calls these):
- `load_recipe(name_or_path, overrides)` -> `TrainConfig` (recipes live in training/*.toml)
- `train(config, data, out, resume=False, device="auto", progress=True)` -> summary dict
- `prepare_dataset(src, out, size=512, seed=0, progress=True)` -> summary dict
- `export_run(run_dir, out_dir, name=None)` -> path of the exported .safetensors
"""

from .data import prepare_dataset, xdog
from .trainer import TrainConfig, export_run, load_recipe, train

__all__ = ["TrainConfig", "export_run", "load_recipe", "prepare_dataset", "train", "xdog"]
