"""Training library: XDoG, simulated hints, losses, the loop (resume, Ctrl-C, DDP), datasets, recipes, export."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import typing
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from alacgan_batch.errors import ConfigError, InputError, OutputError
from alacgan_batch.train import data as tdata
from alacgan_batch.train import export_run, load_recipe, losses, prepare_dataset, train
from alacgan_batch.train.trainer import SizedCritic, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)  # the suite shares two cores with other work


def _tiny(**overrides: str):
    return load_recipe("tiny", {k: str(v) for k, v in overrides.items()})


# --- XDoG (§4.1) --------------------------------------------------------------------------------

def _shapes(size: int = 96) -> np.ndarray:
    image = np.full((size, size), 235, np.uint8)
    cv2.rectangle(image, (20, 20), (70, 60), 60, -1)
    cv2.circle(image, (60, 70), 15, 120, -1)
    return image


def test_xdog_is_binary_with_lines_on_edges() -> None:
    image = _shapes()
    lines = tdata.xdog(image, sigma=0.5)
    assert lines.dtype == np.float32 and lines.min() >= 0 and lines.max() <= 1
    assert np.mean((lines > 0.01) & (lines < 0.99)) < 0.001  # phi = 1e9: a step, not a ramp
    ink = lines < 0.5
    assert ink.sum() > 50
    edges = cv2.Canny(image, 10, 30) > 0
    # lines sit on the dark side of an edge, as wide as the kappa * sigma = 2.25 px blur reaches
    near_edge = cv2.dilate(edges.astype(np.uint8), np.ones((13, 13), np.uint8)) > 0
    assert np.all(near_edge[ink])
    assert ink[edges].mean() > 0.3  # and the edges are drawn
    assert not ink[35:45, 30:45].any() and not ink[:10, :10].any()  # flat areas stay paper


def test_xdog_larger_sigma_gives_thicker_lines() -> None:
    image = _shapes()
    ink = [(tdata.xdog(image, sigma=s) < 0.5).sum() for s in (0.3, 0.5, 1.0)]
    assert ink[0] < ink[1] < ink[2]


def test_sketch_jitter_keeps_paper_white_and_lightens_ink() -> None:
    sketch = np.array([[0.0, 1.0]], np.float32)
    for seed in range(20):
        out = tdata.jitter_sketch(sketch, np.random.default_rng(seed))
        assert out[0, 1] == 1.0 and 0.0 <= out[0, 0] <= 0.3 + 1e-6


# --- simulated hints (§3.1) ---------------------------------------------------------------------

def test_pixel_hint_density_matches_truncated_normal() -> None:
    rng = np.random.default_rng(0)
    density = np.mean([tdata.hint_mask(128, 128, rng).mean() for _ in range(400)])
    expected = tdata.expected_hint_density()
    assert expected == pytest.approx(0.005 * math.sqrt(2 / math.pi))
    assert density == pytest.approx(expected, rel=0.1)


def test_pixel_hint_carries_downsampled_colour_under_mask() -> None:
    color = np.zeros((64, 64, 3), np.float32)
    color[..., 0] = 1.0  # pure red
    hint = tdata.pixel_hint(color, np.random.default_rng(1), xi_std=0.5)  # dense, so some pixels are set
    mask = hint[3] > 0
    assert hint.shape == (4, 16, 16) and mask.any()
    assert torch.all(hint[0][mask] == 1) and torch.all(hint[1][mask] == -1)
    assert torch.all(hint[:3][:, ~mask] == 0)


def test_exactly_half_of_each_batch_gets_hints() -> None:
    options = tdata.DataOptions(image_size=64, batch_size=4, synth_size=128, stroke_hint_prob=1.0,
                                stroke_parts_all_prob=1.0)
    dataset = tdata.SynthDataset(options)
    loader = tdata.make_loader(dataset, options, start_step=0, world=1, workers=0)
    batches = [b for b, _ in zip(loader, range(3), strict=False)]
    for batch in batches:
        assert batch["hint"].shape == (4, 4, 16, 16)
        masks = batch["hint"][:, 3].flatten(1).sum(1)
        assert torch.all(masks[2:] == 0)  # the second half: no hints at all
        assert torch.all(batch["hint"][2:] == 0)
    assert sum(int((b["hint"][:2, 3].flatten(1).sum(1) > 0).sum()) for b in batches) >= 4


def test_samples_depend_only_on_index() -> None:
    options = tdata.DataOptions(image_size=64, batch_size=4, synth_size=128, stroke_hint_prob=0.5)
    a, b = tdata.SynthDataset(options)[13], tdata.SynthDataset(options)[13]
    for key in ("sketch", "color", "hint"):
        assert torch.equal(a[key], b[key])
    assert a["sketch"].shape == (1, 64, 64) and a["color"].shape == (3, 64, 64)
    assert a["sketch"].min() >= -1 and a["color"].max() <= 1


def test_stroke_hints_use_the_inference_encoding() -> None:
    color = np.zeros((64, 64, 3), np.float32)
    color[:, 32:] = (0.0, 0.0, 1.0)
    rgb, mask = tdata.random_strokes(color, np.random.default_rng(3), count=4)
    hint = tdata.stroke_hint(rgb, mask)
    assert hint.shape == (4, 16, 16) and hint[3].sum() > 0
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    assert torch.all(hint[3][(yy + xx) % 2 == 1] == 0)  # §3.4 checkerboard thinning


def test_hint_spread_samples_carry_region_fills_at_half_weight(tmp_path: Path) -> None:
    """`hint_spread`: stroke hints also fill their regions (weight 0.5), as the engine does; off, they do not."""
    pool = tdata.build_synth_pool(tmp_path / "pool", 2, size=64)
    weights = {}
    for spread in (False, True):
        options = tdata.DataOptions(image_size=64, batch_size=2, synth_size=64, hint_fraction=1.0,
                                    stroke_hint_prob=1.0, stroke_parts_all_prob=1.0, hint_spread=spread)
        weights[spread] = tdata.SynthPoolDataset(pool, options)[0]["hint"][3]
    assert set(weights[False].unique().tolist()) == {0.0, 1.0}
    assert torch.equal(weights[True] == 1.0, weights[False] == 1.0)  # the drawn strokes are unchanged
    spread_share = float((weights[True] == 0.5).float().mean())
    assert spread_share > 0.5  # most of the frame: every part of a synth frame has a stroke


# --- losses (§3.2) ------------------------------------------------------------------------------

def test_gradient_penalty_of_a_linear_critic() -> None:
    torch.manual_seed(0)
    w = torch.full((3, 8, 8), 0.01)

    def critic(y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return (y * w).flatten(1).sum(1, keepdim=True) + f.flatten(1).sum(1, keepdim=True)

    real, fake, feats = torch.rand(5, 3, 8, 8), torch.rand(5, 3, 8, 8), torch.rand(5, 2, 1, 1)
    penalty = losses.gradient_penalty(critic, real, fake, feats)
    norm = 0.01 * math.sqrt(3 * 8 * 8)  # ||grad_y D|| = ||w|| for every interpolate
    assert penalty.item() == pytest.approx(10 * (norm - 1) ** 2, rel=1e-5)
    d_real, d_fake = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.5], [-0.5]])
    assert losses.critic_loss(d_fake, d_real).item() == pytest.approx(0.0 - 2.0)
    assert losses.drift_penalty(d_real).item() == pytest.approx(1e-3 * 5.0)
    assert losses.adversarial_loss(d_fake).item() == pytest.approx(0.0)


def test_interpolates_lie_between_real_and_fake() -> None:
    real, fake = torch.zeros(3, 3, 4, 4), torch.ones(3, 3, 4, 4)
    eps = torch.tensor([0.0, 0.25, 1.0]).view(3, 1, 1, 1)
    mixed = losses.interpolate(real, fake, eps)
    assert torch.allclose(mixed[:, 0, 0, 0], torch.tensor([0.0, 0.25, 1.0])) and mixed.requires_grad


def test_lab_conversion_of_known_colours() -> None:
    lab = losses.rgb_to_lab(torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], [1.0, -1.0, -1.0]]).view(3, 3, 1, 1))
    assert lab[0, :, 0, 0].tolist() == pytest.approx([100.0, 0.0, 0.0], abs=0.05)
    assert lab[1, :, 0, 0].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=0.05)
    assert lab[2, :, 0, 0].tolist() == pytest.approx([53.24, 80.09, 67.20], abs=0.1)  # sRGB red


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


@pytest.mark.parametrize("kind", ["content", "adversarial", "critic"])
def test_one_step_of_each_loss_updates_weights(kind: str) -> None:
    from alacgan_batch.train.trainer import build_networks

    torch.manual_seed(0)
    config = _tiny()
    generator, features, critic, _ = build_networks(config)
    sketch, real = torch.rand(2, 1, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    hint = torch.zeros(2, 4, 16, 16)
    feats = features(sketch)
    fake = generator(sketch, hint, feats)
    if kind == "critic":
        target, opt = critic, torch.optim.Adam(critic.parameters(), 1e-3)
        d_real, d_fake = critic(real, feats.detach()), critic(fake.detach(), feats.detach())
        mixed = losses.interpolate(real, fake)
        loss = (losses.critic_loss(d_fake, d_real) + losses.drift_penalty(d_real)
                + losses.gradient_penalty_from(critic(mixed, feats.detach()), mixed))
    else:
        target = generator
        opt = torch.optim.Adam(list(generator.parameters()) + list(features.parameters()), 1e-3)
        loss = (losses.content_loss(fake, real, "rgb_lab_l1") if kind == "content"
                else losses.ADV_WEIGHT * losses.adversarial_loss(critic(fake, feats.detach())))
    before = _snapshot(target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert math.isfinite(loss.item())
    assert _changed(before, target)
    assert all(torch.isfinite(p).all() for p in target.parameters())


def test_sized_critic_accepts_small_crops() -> None:
    critic = SizedCritic(8, 16, 64)
    assert critic(torch.zeros(2, 3, 64, 64), torch.zeros(2, 16, 4, 4)).shape == (2, 1)


# --- recipes ------------------------------------------------------------------------------------

def test_recipes_load_and_overrides_are_typed() -> None:
    config = load_recipe("starter", {"steps": "100", "lr": "1e-4", "adversarial": "true", "depths": "2,1,1,1"})
    assert config.steps == 100 and config.lr == 1e-4 and config.adversarial is True
    assert config.depths == (2, 1, 1, 1) and config.features == "lineart" and config.vgg16 is None
    assert load_recipe("starter-spread").hint_spread and not config.hint_spread
    with pytest.raises(ConfigError, match="unknown training setting"):
        load_recipe("tiny", {"stepz": "3"})
    with pytest.raises(ConfigError, match="steps"):
        load_recipe("tiny", {"steps": "many"})
    with pytest.raises(ConfigError, match="unknown training recipe"):
        load_recipe("nope")
    # values of the right type but out of range are refused before any work (they were torch errors mid-run)
    for key, value in (("lr", "-1"), ("seed", "-1"), ("workers", "-1"), ("log_every", "0"), ("ndf", "0")):
        with pytest.raises(ConfigError, match=f"^{key} must be"):
            load_recipe("tiny", {key: value})


@pytest.mark.parametrize(("key", "value"), [
    ("lr", "nan"), ("lr", "1e9"), ("lr_after_drop", "inf"), ("beta1", "1"), ("beta2", "-0.1"),
    ("jitter", "2,1"), ("jitter", "nan,1"), ("jitter", "0.5,1.5"), ("cardinality", "0,0,0,0"),
    ("depths", "-1,1,1,1"), ("threads", "100000"), ("workers", "100000"), ("stroke_parts_all_prob", "5"),
    ("synth_xdog_prob", "7"), ("stroke_hint_prob", "-0.5"), ("xi_std", "1e9"), ("xi_std", "nan"),
    ("xdog_sigmas", "0.4,0"), ("xdog_sigmas", "0.4,nan"), ("seed", "4294967296"), ("max_minutes", "inf"),
    ("lr_drop_minutes", "nan"), ("gp_weight", "nan"), ("adv_weight", "-1"), ("image_size", "8192"),
    ("synth_size", "100000"), ("val_size", "40"), ("batch_size", "0"),
])
def test_out_of_range_settings_are_config_errors(key: str, value: str) -> None:
    # each was accepted, then failed mid-run as an internal error (torch/numpy ValueError, ZeroDivisionError,
    # OverflowError, MemoryError) or trained on nonsense (a probability of 7)
    with pytest.raises(ConfigError, match=f"^{key} must be"):
        load_recipe("tiny", {key: value})


def test_every_numeric_setting_refuses_nan_and_overflow() -> None:
    from alacgan_batch.train.trainer import TrainConfig, _field_types

    def is_numeric(kind: object) -> bool:
        return kind in (int, float) or (typing.get_origin(kind) is tuple and typing.get_args(kind)[0] in (int, float))

    numeric = [key for key, kind in _field_types().items() if is_numeric(kind)]
    assert len(numeric) > 30
    for key in numeric:
        length = len(getattr(TrainConfig(), key)) if typing.get_origin(_field_types()[key]) is tuple else 1
        for value in ("nan", "-inf", "1e400"):
            with pytest.raises(ConfigError, match=key):
                load_recipe("tiny", {key: ",".join([value] * length)})


def test_a_run_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("notes")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        train(_tiny(steps=1), None, tmp_path / "run", progress=False)
    assert (tmp_path / "run").read_text() == "notes"


def test_paper_recipe_needs_outside_weights(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--vgg16"):
        load_recipe("paper")
    vgg = tmp_path / "vgg16.pth"
    vgg.write_bytes(b"x")
    with pytest.raises(ConfigError, match="--i2v"):
        load_recipe("paper", {"vgg16": str(vgg)})
    with pytest.raises(ConfigError, match="--i2v file not found"):
        load_recipe("paper", {"vgg16": str(vgg), "i2v": str(tmp_path / "missing.pth")})
    paper = load_recipe("paper", {"vgg16": str(vgg), "i2v": str(vgg)})
    assert (paper.image_size, paper.batch_size, paper.steps, paper.lr_drop_step) == (512, 4, 250_000, 125_000)
    assert (paper.lr, paper.lr_after_drop, paper.beta1, paper.beta2) == (1e-4, 1e-5, 0.5, 0.9)


# --- the loop -----------------------------------------------------------------------------------

def _ckpt_state(path: Path) -> dict:
    state = load_checkpoint(path)
    return {k: state[k] for k in ("generator", "features", "critic")}


def _assert_same(a: dict, b: dict) -> None:
    for part in a:
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs"


def test_resume_is_bitwise_exact(tmp_path: Path) -> None:
    full = train(_tiny(steps=4), None, tmp_path / "full", progress=False)
    half = train(_tiny(steps=2), None, tmp_path / "split", progress=False)
    assert half["step"] == 2
    with pytest.raises(InputError, match="--resume"):
        train(_tiny(steps=4), None, tmp_path / "split", progress=False)
    rest = train(_tiny(steps=4), None, tmp_path / "split", resume=True, progress=False)
    assert rest["start_step"] == 2 and rest["step"] == 4
    assert rest["weights_sha256"] == full["weights_sha256"]
    _assert_same(_ckpt_state(tmp_path / "full/checkpoints/step-00000004.pt"),
                 _ckpt_state(tmp_path / "split/checkpoints/step-00000004.pt"))
    full_opt = load_checkpoint(tmp_path / "full/checkpoints/step-00000004.pt")["opt_g"]["state"]
    split_opt = load_checkpoint(tmp_path / "split/checkpoints/step-00000004.pt")["opt_g"]["state"]
    assert all(torch.equal(full_opt[k]["exp_avg"], split_opt[k]["exp_avg"]) for k in full_opt)
    # the run folder holds everything a run promises
    run = tmp_path / "full"
    assert json.loads((run / "config.json").read_text())["name"] == "tiny"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4] and all(math.isfinite(r["loss_g"]) for r in records)
    assert records[-1]["lr"] == 1e-5 and records[0]["lr"] == 1e-4  # lr drop at step 3 (recipe)
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["step-00000002.png", "step-00000004.png"]
    assert cv2.imread(str(run / "samples/step-00000002.png")).shape == (4 * 64, 4 * 64, 3)
    assert len(list((run / "checkpoints").glob("step-*.pt"))) <= 2  # keep_last


def test_a_training_command_stopped_by_sigterm_saves_and_exits_143(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    run = subprocess.Popen([sys.executable, "-m", "alacgan_batch", "train", "synth", "-o", str(tmp_path / "run"),
                            "--recipe", "tiny", "--set", "steps=10000", "--set", "max_minutes=2"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "run").is_dir() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2.0)  # into the loop
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 128 + signal.SIGTERM, stderr  # saved, but not done: a scheduler must see that
    assert "training interrupted" in stderr and "--resume" in stderr
    assert list((tmp_path / "run/checkpoints").glob("step-*.pt"))


def test_resume_with_nothing_to_resume(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing to resume"):
        train(_tiny(), None, tmp_path / "empty", resume=True, progress=False)


def test_ctrl_c_saves_and_resume_continues(tmp_path: Path) -> None:
    timer = threading.Timer(4.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        summary = train(_tiny(steps=10_000, max_minutes=2), None, tmp_path / "run", progress=False)
    finally:
        timer.cancel()
    assert summary["interrupted"] and 0 < summary["step"] < 10_000
    saved = sorted((tmp_path / "run/checkpoints").glob("step-*.pt"))[-1]
    assert load_checkpoint(saved)["step"] == summary["step"]
    more = train(_tiny(steps=summary["step"] + 1), None, tmp_path / "run", resume=True, progress=False)
    assert more["step"] == summary["step"] + 1 and not more["interrupted"]


def test_resume_drops_metrics_logged_after_its_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_tiny(steps=4), None, run, progress=False)
    # a second Ctrl-C during step 4's save: steps 3 and 4 were logged, the last checkpoint is step 2
    (run / "checkpoints/step-00000004.pt").unlink()
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "loss_')  # and a line torn by the kill
    train(_tiny(steps=6), None, run, resume=True, progress=False)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert not list(run.glob(".*partial*"))


def test_sigterm_to_the_whole_job_with_data_workers_saves_and_exits_143(tmp_path: Path) -> None:
    """timeout, Slurm and Kubernetes signal the job's whole process group, DataLoader workers included."""
    run = tmp_path / "run"
    job = subprocess.Popen([sys.executable, "-m", "alacgan_batch", "train", "synth", "-o", str(run), "--recipe", "tiny",
                            "--device", "cpu", "--set", "steps=100000", "--set", "workers=1"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        metrics = run / "metrics.jsonl"
        deadline = time.monotonic() + 120
        while (not metrics.exists() or not metrics.read_text().strip()) and time.monotonic() < deadline:
            assert job.poll() is None, job.communicate()[1]
            time.sleep(0.1)
        os.killpg(job.pid, signal.SIGTERM)
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 128 + signal.SIGTERM, stderr
    assert "internal error" not in stderr and "rerun with --resume" in stderr
    summary = json.loads((run / "summary.json").read_text())
    saved = sorted((run / "checkpoints").glob("step-*.pt"))[-1]
    assert summary["interrupted"] and load_checkpoint(saved)["step"] == summary["step"] > 0


def test_second_stage_starts_from_the_init_run(tmp_path: Path) -> None:
    first = train(_tiny(steps=2), None, tmp_path / "stage1", progress=False)
    # steps=0 saves the starting weights: they are stage 1's, whatever the seed; channels-last trains alike
    train(_tiny(steps=0, init=tmp_path / "stage1", seed=5, channels_last="true"), None, tmp_path / "stage2",
          progress=False)
    start = _ckpt_state(tmp_path / "stage2/checkpoints/step-00000000.pt")
    end_of_stage1 = _ckpt_state(Path(first["checkpoint"]))
    nets = ("generator", "features")
    _assert_same({k: start[k] for k in nets}, {k: end_of_stage1[k] for k in nets})
    more = train(_tiny(steps=1, init=tmp_path / "stage1", channels_last="true"), None, tmp_path / "stage2b",
                 progress=False)
    assert more["step"] == 1 and more["weights_sha256"] != first["weights_sha256"]
    with pytest.raises(ConfigError, match="does not fit"):
        train(_tiny(steps=1, init=tmp_path / "stage1", ngf=16), None, tmp_path / "x",
              progress=False)
    with pytest.raises(ConfigError, match="init checkpoint not found"):
        _tiny(init=tmp_path / "missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_hold_identical_weights(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), str(ROOT / "tests/ddp_train_worker.py"), str(tmp_path), "2"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["step"] for r in ranks] == [2, 2]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    # rank 0 alone writes the run; its checkpoint holds both ranks' RNG states
    ckpt = load_checkpoint(tmp_path / "run/checkpoints/step-00000002.pt")
    assert len(ckpt["rng"]) == 2 and not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])


# --- datasets -----------------------------------------------------------------------------------

def _illustrations(folder: Path, count: int = 3) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = np.full((80, 100, 3), 230, np.uint8)
        for _ in range(4):
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.circle(image, tuple(int(v) for v in rng.integers(10, 70, 2)), int(rng.integers(8, 25)), color, -1)
        cv2.imwrite(str(folder / f"ill_{i}.png"), image)


def test_prepare_dataset_skips_corrupt_images_and_caches(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _illustrations(src)
    (src / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.warns(UserWarning, match="broken.png"):
        summary = prepare_dataset(src, tmp_path / "prepared", size=64, progress=False)
    assert summary["images"] == 3 and summary["skipped"] == 1 and summary["skipped_files"] == ["broken.png"]
    manifest = json.loads((tmp_path / "prepared/manifest.json").read_text())
    assert manifest["complete"] and len(manifest["items"]) == 3
    sketch = cv2.imread(str(tmp_path / "prepared" / manifest["items"][0]["sketches"][0]), cv2.IMREAD_GRAYSCALE)
    assert min(sketch.shape) == 64 and set(np.unique(sketch)) <= {0, 255}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = prepare_dataset(src, tmp_path / "prepared", size=64, progress=False)
    assert again["cached"] == 3


def test_the_command_prints_a_skipped_image_as_one_warning_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _illustrations(src, count=1)
    (src / "broken.png").write_bytes(b"\x89PNG not really")
    done = subprocess.run([sys.executable, "-m", "alacgan_batch", "prepare", str(src), "-o", str(tmp_path / "data"),
                           "--size", "64"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if "skipping" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: skipping unreadable image") \
        and warned[0].endswith("broken.png"), done.stderr
    assert "UserWarning" not in done.stderr and ".py:" not in done.stderr


def test_prepare_dataset_redoes_images_of_another_size_and_keeps_out_of_its_source(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _illustrations(src)
    prepare_dataset(src, tmp_path / "prepared", size=64, progress=False)
    again = prepare_dataset(src, tmp_path / "prepared", size=48, progress=False)
    assert again["cached"] == 0  # the 64 px images were not reused as 48 px ones
    manifest = json.loads((tmp_path / "prepared/manifest.json").read_text())
    color = cv2.imread(str(tmp_path / "prepared" / manifest["items"][0]["color"]))
    assert manifest["size"] == 48 and min(color.shape[:2]) == 48
    with pytest.raises(InputError, match="outside its source"):
        prepare_dataset(src, src / "prepared", size=48, progress=False)
    with pytest.raises(ConfigError, match="size must be"):
        prepare_dataset(src, tmp_path / "p2", size=0, progress=False)


def test_prepare_dataset_rejects_empty_or_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        prepare_dataset(tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(InputError, match="not found"):
        prepare_dataset(tmp_path / "missing", tmp_path / "out", progress=False)


def test_train_on_broken_datasets(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    with pytest.raises(InputError, match="not a prepared dataset"):
        train(_tiny(), tmp_path / "raw", tmp_path / "run0", progress=False)
    src = tmp_path / "src"
    _illustrations(src, count=2)
    prepare_dataset(src, tmp_path / "prepared", size=64, progress=False)
    manifest = json.loads((tmp_path / "prepared/manifest.json").read_text())
    (tmp_path / "prepared" / manifest["items"][0]["color"]).write_bytes(b"garbage")  # corrupted after preparing
    with pytest.warns(UserWarning, match="skipping training image"):
        summary = train(_tiny(steps=2, adversarial="false"), tmp_path / "prepared", tmp_path / "run1",
                        progress=False)
    assert summary["step"] == 2 and summary["skipped_images"] >= 1


@pytest.mark.parametrize("damage", [{"items": {"a": 1}}, {"items": "abc"}, {"items": 5}, {}, [1],
                                    {"items": [{"color": "color/x.png"}]}, {"items": ["color/x.png"]},
                                    {"items": [{"color": "color/x.png", "sketches": "sketch/x.png"}]}])
def test_a_damaged_manifest_stops_before_the_run_folder(tmp_path: Path, damage: object) -> None:
    src = tmp_path / "src"
    _illustrations(src, count=2)
    prepared = tmp_path / "prepared"
    prepare_dataset(src, prepared, size=64, progress=False)
    (prepared / "manifest.json").write_text(json.dumps(damage))
    with pytest.raises(InputError, match=r"manifest.json is damaged .*alacgan prepare"):
        train(_tiny(steps=1, adversarial="false"), prepared, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # no config.json or samples/ of a run that never started


def test_prepare_again_repairs_a_damaged_manifest_item(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _illustrations(src, count=2)
    prepared = tmp_path / "prepared"
    prepare_dataset(src, prepared, size=64, progress=False)
    manifest = json.loads((prepared / "manifest.json").read_text())
    del manifest["items"][0]["sketches"]
    (prepared / "manifest.json").write_text(json.dumps(manifest))
    summary = prepare_dataset(src, prepared, size=64, progress=False)
    assert summary["cached"] == 1  # the damaged item is made again, not copied
    assert all(item.get("sketches") for item in json.loads((prepared / "manifest.json").read_text())["items"])
    assert train(_tiny(steps=1, adversarial="false"), prepared, tmp_path / "run", progress=False)["step"] == 1


# --- export -------------------------------------------------------------------------------------

def test_export_run_writes_a_loadable_model_and_card(tmp_path: Path) -> None:
    from alacgan_batch.checkpoints import load_model

    # crops of 96-pixel synth frames: the model's working scale is the frame's, not the crop's
    train(_tiny(steps=2, adversarial="false", synth_size=96), None, tmp_path / "run", progress=False)
    weights = export_run(tmp_path / "run", tmp_path / "model")
    assert weights.name == "alacgan-tiny.safetensors"
    model = load_model(weights)
    sketch = torch.zeros(1, 1, 64, 64)
    assert model.generator(sketch, torch.zeros(1, 4, 16, 16), model.features(sketch)).shape == (1, 3, 64, 64)
    card = (tmp_path / "model/MODEL_CARD.md").read_text()
    sums = (tmp_path / "model/SHA256SUMS").read_text().split()
    assert sums[1] == weights.name and sums[0] in card and "tiny" in card
    spec = json.loads(weights.with_suffix(".json").read_text())
    assert spec["training"]["recipe"] == "tiny" and spec["training"]["step"] == 2
    assert spec["working_short_side"] == 96  # the synth frame size it learned at
    assert spec["hint_spread"] is False and not model.spec.hint_spread  # the tiny recipe: the paper's hints
    ckpt = load_checkpoint(tmp_path / "run/checkpoints/step-00000002.pt")
    # the exported weights are the run's last checkpoint, every tensor of them
    assert all(torch.equal(v, ckpt["generator"][k]) for k, v in model.generator.state_dict().items())
    # a second export into the same folder (model/ holds the bundled model) is refused unless asked for
    before = {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir()}
    with pytest.raises(OutputError, match="alacgan-tiny.safetensors exists"):
        export_run(tmp_path / "run", tmp_path / "model", name="alacgan-tiny")
    with pytest.raises(OutputError, match="MODEL_CARD.md exists"):  # another model's card is not replaced either
        export_run(tmp_path / "run", tmp_path / "model", name="other")
    assert {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir()} == before
    assert export_run(tmp_path / "run", tmp_path / "model", overwrite=True) == weights
