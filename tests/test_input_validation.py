"""Bad input found by the audit: each is a one-line error of the project's own class, never an internal error."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import draw_frame, run_cli, stroke_image, write_image

from alacgan_batch.checkpoints import ModelSpec, load_model
from alacgan_batch.compose import MIN_SHORT_SIDE, working_size
from alacgan_batch.errors import ConfigError, InputError, ModelError
from alacgan_batch.presets import PRESET_DIR, load_preset
from alacgan_batch.sequence import read_image
from alacgan_batch.train import export_run, load_recipe, train

torch.set_num_threads(1)  # the suite shares two cores with other work


def _one_error_line(stderr: str) -> str:
    """The single `error:` line of a failed run; no traceback, no internal error."""
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr and "internal error" not in stderr, stderr
    return lines[0]


# --- 1. model JSON ------------------------------------------------------------------------------

def _model_with(tmp_path: Path, tiny_model: Path, edit) -> Path:
    """A copy of the tiny model whose JSON has been changed by `edit(data) -> data`."""
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    weights = Path(shutil.copy(tiny_model, folder / tiny_model.name))
    data = json.loads(tiny_model.with_suffix(".json").read_text())
    weights.with_suffix(".json").write_text(json.dumps(edit(data)))
    return weights


def _set(path: tuple[str, ...], value: object):
    def edit(data: dict) -> dict:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return data
    return edit


def test_model_json_list_is_a_model_error(tmp_path, tiny_model):
    weights = _model_with(tmp_path, tiny_model, lambda data: [data])
    with pytest.raises(ModelError, match="tiny.json is not an alacgan-batch model description .a JSON list"):
        load_model(weights)


@pytest.mark.parametrize(("field", "value"), [
    (("generator", "ngf"), 0), (("generator", "ngf"), -8), (("generator", "ngf"), "64"), (("generator", "ngf"), 1),
    (("generator", "depths"), [2, 2]), (("generator", "cardinality"), [32, 32, 32, 0]),
    (("working_short_side",), 0), (("working_short_side",), -5), (("working_short_side",), 1.5),
    (("working_short_side",), "512"), (("working_short_side",), True),
])
def test_model_json_bad_field_is_a_model_error_naming_it(tmp_path, tiny_model, field, value):
    weights = _model_with(tmp_path, tiny_model, _set(field, value))
    with pytest.raises(ModelError) as info:
        load_model(weights)
    message = str(info.value)
    assert "tiny.json" in message and ".".join(field) in message and "\n" not in message


def test_model_spec_from_dict_checks_types_itself(tmp_path):
    # the parser alone, as other callers use it: a list is refused before any attribute is looked up
    with pytest.raises(ModelError, match="not an object"):
        ModelSpec.from_dict([], tmp_path / "m.json")  # type: ignore[arg-type]


def test_bad_model_json_in_the_cli(tmp_path, tiny_model, frames_dir, capsys):
    weights = _model_with(tmp_path, tiny_model, _set(("generator", "ngf"), "x"))
    code, _, stderr = run_cli(["colorize", frames_dir, "-o", tmp_path / "out", "--weights", weights], capsys)
    assert code == 4 and "generator.ngf" in _one_error_line(stderr)
    code, stdout, stderr = run_cli(["info", "--weights", weights, "--json"], capsys)
    assert code == 0, stderr
    assert "generator.ngf" in json.loads(stdout)["model_error"]


# --- 2. presets ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "key"), [
    ('short_side = "big"', "short_side"), ("short_side = true", "short_side"), ("short_side = -1", "short_side"),
    ("short_side = 8", "short_side"), ("batch_size = 0", "batch_size"), ("batch_size = 2.5", "batch_size"),
    ('overlay_lines = "yes"', "overlay_lines"), ("flatten = 1", "flatten"), ("engine = 3", "engine"),
    ("precision = false", "precision"),
])
def test_preset_value_of_the_wrong_type_is_a_config_error(tmp_path, line, key):
    path = tmp_path / "mine.toml"
    path.write_text(f"[colorize]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_preset(str(path))
    assert str(path) in str(info.value) and key in str(info.value)


def test_preset_colorize_must_be_a_table_and_the_file_text(tmp_path):
    (tmp_path / "flat.toml").write_text("colorize = 5\n")
    with pytest.raises(ConfigError, match="must be a table"):
        load_preset(str(tmp_path / "flat.toml"))
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00[colorize]")
    with pytest.raises(ConfigError, match="cannot read preset .*binary.toml"):
        load_preset(str(tmp_path / "binary.toml"))


def test_shipped_presets_still_load():
    for path in sorted(PRESET_DIR.glob("*.toml")):
        assert isinstance(load_preset(path.stem), dict)


def test_bad_preset_in_the_cli(tmp_path, frames_dir, capsys):
    (tmp_path / "big.toml").write_text('[colorize]\nshort_side = "big"\n')
    code, _, stderr = run_cli(["colorize", frames_dir, "-o", tmp_path / "out", "--engine", "flat", "--preset",
                               tmp_path / "big.toml"], capsys)
    assert code == 2 and "short_side" in _one_error_line(stderr)


# --- 3. working size ----------------------------------------------------------------------------

@pytest.mark.parametrize("short_side", [-5, 3, MIN_SHORT_SIDE - 1, 2.5, True])
def test_short_side_too_small_or_not_whole_is_a_config_error(short_side):
    with pytest.raises(ConfigError, match="short side"):
        working_size((72, 100), short_side)


@pytest.mark.parametrize("size", [(8, 8), (12, 60), (60, MIN_SHORT_SIDE - 1)])
def test_frame_too_small_for_its_own_size_is_an_input_error(size):
    with pytest.raises(InputError, match=f"at least {MIN_SHORT_SIDE} px"):
        working_size(size, 0)
    assert min(working_size(size, MIN_SHORT_SIDE)) == MIN_SHORT_SIDE  # scaled up, it is fine


def test_working_size_keeps_its_meaning():
    assert working_size((72, 100), 0) == (72, 100) and working_size((72, 100), None) == (72, 100)
    assert working_size((MIN_SHORT_SIDE, 300), 0) == (MIN_SHORT_SIDE, 300)
    assert working_size((100, 200), 50) == (50, 100)


def _hinted_shot(tmp_path: Path, size: tuple[int, int]) -> tuple[Path, Path]:
    folder = tmp_path / f"lineart{size[0]}x{size[1]}"
    for i in (1, 2):
        write_image(folder / f"shot.{i:04d}.png", draw_frame(size, shift=i))
    hint = write_image(tmp_path / f"hint{size[0]}x{size[1]}.png",
                       stroke_image(size, (size[1] // 2, size[0] // 2), (255, 0, 0), radius=2))
    return folder, hint


@pytest.mark.parametrize("short_side", ["-5", "3"])
def test_bad_short_side_in_the_cli(tmp_path, capsys, short_side):
    # propagation runs DIS flow at the working size: before the check it failed inside OpenCV
    folder, hint = _hinted_shot(tmp_path, (72, 100))
    code, _, stderr = run_cli(["colorize", folder, "-H", f"{hint}@1", "-o", tmp_path / "out", "--engine", "flat",
                               "--short-side", short_side], capsys)
    assert code == 2 and f"short side {short_side} is too small" in _one_error_line(stderr)


def test_tiny_frames_at_their_own_size_in_the_cli(tmp_path, capsys):
    folder, hint = _hinted_shot(tmp_path, (8, 8))
    code, _, stderr = run_cli(["colorize", folder, "-H", f"{hint}@1", "-o", tmp_path / "out", "--engine", "flat",
                               "--short-side", "0"], capsys)
    assert code == 3 and "frame is 8x8 px" in _one_error_line(stderr)


# --- 4. a PNG header claiming a huge size -------------------------------------------------------

def _huge_png(path: Path, width: int = 50_000, height: int = 50_000) -> Path:
    """A valid 8x8 PNG whose IHDR (with a correct CRC) claims `width` x `height`."""
    ok, buffer = cv2.imencode(".png", np.full((8, 8), 255, np.uint8))
    data = bytearray(buffer.tobytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR data starts after signature (8), length and type (8)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # CRC over type + data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def test_png_claiming_a_huge_size_is_an_input_error(tmp_path):
    path = _huge_png(tmp_path / "huge.png")
    with pytest.raises(InputError, match="cannot read .*huge.png"):
        read_image(path)


def test_png_claiming_a_huge_size_in_the_cli(tmp_path, capsys):
    _huge_png(tmp_path / "in" / "shot.0001.png")
    code, _, stderr = run_cli(["colorize", tmp_path / "in", "-o", tmp_path / "out", "--engine", "flat"], capsys)
    assert code == 3 and "cannot read" in _one_error_line(stderr)


def test_prepare_skips_a_png_claiming_a_huge_size(tmp_path):
    from alacgan_batch.train.data import prepare_dataset

    src = tmp_path / "src"
    src.mkdir()
    image = np.zeros((64, 64, 3), np.uint8)
    image[16:48, 16:48] = (40, 160, 220)
    assert cv2.imwrite(str(src / "ok.png"), image)
    _huge_png(src / "huge.png")
    with pytest.warns(UserWarning, match="huge.png"):
        summary = prepare_dataset(src, tmp_path / "prepared", size=32, progress=False)
    assert summary["images"] == 1 and summary["skipped_files"] == ["huge.png"]


def test_a_truncated_frame_gives_one_line_on_stderr_and_no_opencv_warning(tmp_path):
    ok, buffer = cv2.imencode(".png", np.full((40, 56), 255, np.uint8))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "shot.0001.png").write_bytes(buffer.tobytes()[:60])
    run = subprocess.run([sys.executable, "-m", "alacgan_batch", "colorize", str(tmp_path / "in"), "-o",
                          str(tmp_path / "out"), "--engine", "flat"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 3, run.stderr
    assert [line for line in run.stderr.splitlines() if "error" in line.lower() or "warn" in line.lower()] == [
        f"error: cannot read {tmp_path / 'in' / 'shot.0001.png'}: not a readable image (corrupt or truncated?)"]


# --- 5. training checkpoints --------------------------------------------------------------------

def _run_with_checkpoint(folder: Path, write) -> Path:
    path = folder / "checkpoints" / "step-00000001.pt"
    path.parent.mkdir(parents=True)
    write(path)
    return folder


def _random_dict(path: Path) -> None:
    torch.save({"a": 1}, path)


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(("write", "fragment"), [(_random_dict, "not a training checkpoint"),
                                                 (_zero_bytes, "cannot read training checkpoint")])
def test_resume_from_a_foreign_checkpoint_is_a_model_error(tmp_path, write, fragment):
    run = _run_with_checkpoint(tmp_path / "run", write)
    with pytest.raises(ModelError, match=fragment) as info:
        train(load_recipe("tiny"), None, run, resume=True, progress=False)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match=fragment):
        export_run(run, tmp_path / "model")


def test_resume_with_another_recipe_is_a_one_line_model_error(tmp_path):
    # steps=0 writes the starting weights without training: a real checkpoint of an ngf-16 network
    train(load_recipe("tiny", {"steps": "0", "ngf": "16"}), None, tmp_path / "run", progress=False)
    with pytest.raises(ModelError, match="different recipe .ngf 16 there, 8 here") as info:
        train(load_recipe("tiny"), None, tmp_path / "run", resume=True, progress=False)
    assert "\n" not in str(info.value)
    # a checkpoint without its recipe record: the strict load names the mismatch, still in one line
    path = next((tmp_path / "run" / "checkpoints").glob("step-*.pt"))
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["config"]
    torch.save(checkpoint, path)
    with pytest.raises(ModelError, match="does not match the network: .*mis-shaped") as info:
        train(load_recipe("tiny"), None, tmp_path / "run", resume=True, progress=False)
    assert "\n" not in str(info.value)


def test_foreign_checkpoint_in_the_cli(tmp_path, capsys):
    run = _run_with_checkpoint(tmp_path / "run", _zero_bytes)
    code, _, stderr = run_cli(["train", "synth", "-o", run, "--recipe", "tiny", "--resume", "--device", "cpu"],
                              capsys)
    assert code == 4 and "cannot read training checkpoint" in _one_error_line(stderr)
    code, _, stderr = run_cli(["export", run, "-o", tmp_path / "model"], capsys)
    assert code == 4 and "cannot read training checkpoint" in _one_error_line(stderr)


# --- 6. the command a training error message names ----------------------------------------------

def test_unprepared_dataset_names_the_real_prepare_command(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(InputError, match=r"run `alacgan prepare SRC -o .*raw` first") as info:
        train(load_recipe("tiny"), tmp_path / "raw", tmp_path / "run", progress=False)
    assert "train prepare" not in str(info.value)


def test_a_frame_of_another_shape_in_a_shot_is_named(frames_dir, tmp_path, capsys):
    write_image(frames_dir / "shot.0004.png", draw_frame((100, 72)))  # turned on its side: 72x100 -> 100x72
    hint = write_image(tmp_path / "hints" / "shot.0001.png", stroke_image((72, 100), (30, 40), (0, 0, 255)))
    code, _, stderr = run_cli(["colorize", frames_dir, "--hints", hint, "--engine", "flat", "-o", tmp_path / "out"],
                              capsys)
    line = _one_error_line(stderr)
    assert code == 3 and "frame 4 is 72x100" in line and "frame 1" in line and "100x72" in line


def test_a_model_file_named_on_purpose_must_exist(tmp_path):
    from alacgan_batch.checkpoints import resolve_model_files
    from alacgan_batch.errors import ModelError

    with pytest.raises(ModelError, match="--i2v .*nope.pth: no such file"):
        resolve_model_files(i2v=tmp_path / "nope.pth")  # the bundled model needs no i2v: it was ignored
    with pytest.raises(ModelError, match="--weights .*netG.pth: no such file"):
        resolve_model_files(weights=tmp_path / "netG.pth")


def test_a_run_that_fails_before_its_first_frame_leaves_no_output_folder(frames_dir, tmp_path, capsys):
    (frames_dir / "shot.0001.png").write_bytes(b"")  # no hints: the plan pass does not read it, colouring does
    code, _, stderr = run_cli(["colorize", frames_dir, "--engine", "flat", "-o", tmp_path / "deep" / "out"], capsys)
    assert code == 3 and "shot.0001.png" in _one_error_line(stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lineart"]  # not even the parent it made
    # once a frame is written, the frames and the manifest stay for --resume
    (tmp_path / "out").mkdir()
    (frames_dir / "shot.0001.png").rename(tmp_path / "broken.png")
    write_image(frames_dir / "shot.0006.png", draw_frame((72, 100)))
    (frames_dir / "shot.0006.png").write_bytes(b"")
    code, _, stderr = run_cli(["colorize", frames_dir, "--engine", "flat", "-o", tmp_path / "out",
                               "--on-missing-frames", "skip"], capsys)
    assert code == 3 and "shot.0006.png" in stderr
    kept = sorted(p.name for p in (tmp_path / "out").iterdir())  # frames read ahead may stop before frame 5
    assert kept[0] == "alacgan-manifest.json" and "shot.0002.png" in kept and "shot.0006.png" not in kept
