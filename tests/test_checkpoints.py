"""Official checkpoints load byte-for-byte in their released layout; bad files fail in one line."""

import json
from pathlib import Path

import pytest
import torch

from alacgan_batch.checkpoints import (
    ModelSpec,
    load_generator,
    load_i2v,
    load_model,
    load_vgg16,
    resolve_model_files,
    save_model,
)
from alacgan_batch.errors import ModelError
from alacgan_batch.nets import Generator, GeneratorConfig, Illustration2VecFeatures, LineArtFeatures

LAYOUT = json.loads((Path(__file__).parent / "data" / "official_layout.json").read_text())


def official_state(entries, seed: int = 0, prefix: str = "") -> dict[str, torch.Tensor]:
    """Random tensors under the official key names and shapes (from the reference layout, not our classes)."""
    generator = torch.Generator().manual_seed(seed)
    return {prefix + key: torch.randn(*shape, generator=generator) * 0.05 for key, shape in entries}


def run_generator(net: Generator) -> torch.Tensor:
    torch.manual_seed(1)
    sketch = torch.rand(1, 1, 64, 64) * 2 - 1
    hint = torch.zeros(1, 4, 16, 16)
    hint[:, :, 4:8, 4:8] = 0.5
    features = torch.rand(1, 512, 4, 4)
    with torch.no_grad():
        return net(sketch, hint, features)


@pytest.fixture(scope="module")
def official_netg():
    return official_state(LAYOUT["NetG"])


@pytest.mark.parametrize("container", ["bare", "module", "state_dictG", "state_dictG+module"])
def test_official_generator_loads_in_every_released_container(tmp_path, official_netg, container):
    state = official_netg
    if "module" in container:
        state = {f"module.{k}": v for k, v in state.items()}
    if container.startswith("state_dictG"):
        state = {"step": 1000, "state_dictG": state, "state_dictD": {}, "best_fid": 57.0}
    path = tmp_path / "netG.pth"
    torch.save(state, path)

    loaded = load_generator(path)
    assert not loaded.training
    reference = Generator()
    reference.load_state_dict(official_netg)
    torch.testing.assert_close(run_generator(loaded), run_generator(reference.eval()), rtol=0, atol=0)

    # the same weights through the project's own format give the same output
    ours = tmp_path / "ours.safetensors"
    save_model(ours, loaded, None, ModelSpec(GeneratorConfig(), "i2v"))
    torch.testing.assert_close(run_generator(load_generator(ours)), run_generator(loaded), rtol=0, atol=0)


def test_misshaped_generator_is_a_one_line_error(tmp_path, official_netg):
    state = dict(official_netg)
    state["exit.weight"] = torch.zeros(3, 32, 3, 3)
    del state["toH.0.bias"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ModelError) as info:
        load_generator(tmp_path / "bad.pth")
    message = str(info.value)
    assert "\n" not in message
    assert "1 missing: toH.0.bias" in message and "exit.weight (3, 32, 3, 3) != (3, 64, 3, 3)" in message


def test_official_files_of_the_wrong_shape_or_kind_are_one_line_errors_naming_the_file(tmp_path, official_netg):
    cases = {
        # F1 is Illustration2Vec's 512 channels: a tunnel4 made for 8 was read as -504 feature channels and loaded
        "tunnel4.pth": ({**official_netg, "tunnel4.0.weight": torch.zeros(512, 8, 3, 3)},
                        "tunnel4.0.weight (512, 8, 3, 3) != (512, 1024, 3, 3)"),
        "toH.pth": ({**official_netg, "toH.0.weight": torch.zeros(63, 4, 7, 7)},
                    "toH.0.weight (63, 4, 7, 7) is mis-shaped"),
        "list.pth": ({"state_dictG": [1, 2]}, "state_dictG is a list, not a state dict"),
        "other.pth": ({"conv.weight": torch.zeros(1)}, "no toH.0.weight tensor"),
        "run.pt": ({"version": 1, "step": 4, "config": {}, "generator": dict(official_netg)},
                   "is a training checkpoint of `alacgan train`, not a model file: make one with `alacgan export"),
    }
    for name, (state, fragment) in cases.items():
        torch.save(state, tmp_path / name)
        with pytest.raises(ModelError) as info:
            load_generator(tmp_path / name)
        assert fragment in str(info.value) and str(tmp_path / name) in str(info.value), name
        assert "\n" not in str(info.value)
    (tmp_path / "folder.pth").mkdir()
    with pytest.raises(ModelError, match="folder.pth is a folder, not a model file"):
        load_generator(tmp_path / "folder.pth")


def test_truncated_and_foreign_files_are_model_errors(tmp_path, official_netg):
    path = tmp_path / "netG.pth"
    torch.save(official_netg, path)
    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 3])
    for bad in ("cut.pth", "missing.pth"):
        with pytest.raises(ModelError) as info:
            load_generator(tmp_path / bad)
        assert "\n" not in str(info.value)
    (tmp_path / "cut.safetensors").write_bytes(b"\x10\x00\x00")
    (tmp_path / "cut.json").write_text("{}")
    with pytest.raises(ModelError):
        load_generator(tmp_path / "cut.safetensors")


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ModelError):
        load_generator(tmp_path / "evil.pth")


def test_i2v_and_vgg16_files_load_from_their_official_layouts(tmp_path):
    i2v_state = official_state(LAYOUT["i2v_file"][:12] + [["16.weight", [512, 512, 3, 3]], ["28.bias", [1539]]])
    torch.save(i2v_state, tmp_path / "i2v.pth")
    net = load_i2v(tmp_path / "i2v.pth")
    torch.testing.assert_close(net.model[13].weight, i2v_state["13.weight"])
    assert net.mean.flatten().tolist() == pytest.approx([164.7614, 167.4787, 181.1384], abs=1e-3)
    assert net(torch.zeros(1, 1, 32, 48)).shape == (1, 512, 2, 3)

    vgg_state = official_state(LAYOUT["vgg16_file_kept"] + LAYOUT["vgg16_file_other"][:2])
    torch.save(vgg_state, tmp_path / "vgg16-397923af.pth")
    vgg = load_vgg16(tmp_path / "vgg16-397923af.pth")
    torch.testing.assert_close(vgg.model[7].bias, vgg_state["features.7.bias"])
    assert not any(p.requires_grad for p in vgg.parameters())

    del i2v_state["6.weight"]
    torch.save(i2v_state, tmp_path / "short.pth")
    with pytest.raises(ModelError, match="missing: model.6.weight"):
        load_i2v(tmp_path / "short.pth")


def test_model_with_i2v_features_needs_the_i2v_file(tmp_path, official_netg):
    torch.save(official_netg, tmp_path / "netG.pth")
    with pytest.raises(ModelError, match="--i2v"):
        load_model(tmp_path / "netG.pth")
    torch.save(official_state(LAYOUT["i2v_file"][:12]), tmp_path / "i2v.pth")
    model = load_model(tmp_path / "netG.pth", tmp_path / "i2v.pth")
    assert isinstance(model.features, Illustration2VecFeatures)


def test_own_features_model_round_trip(tmp_path):
    config = GeneratorConfig(ngf=16, feature_channels=32, depths=(1, 1, 1, 1))
    features = LineArtFeatures(32, 8)
    save_model(tmp_path / "m.safetensors", Generator(config), features, ModelSpec(config, "lineart", 8, "m"))
    spec = json.loads((tmp_path / "m.json").read_text())
    assert spec["features"]["kind"] == "lineart" and spec["generator"]["ngf"] == 16
    model = load_model(tmp_path / "m.safetensors")
    torch.testing.assert_close(model.features.model[0].weight, features.model[0].weight)


def test_model_files_resolve_flag_then_env_then_user_folder_then_bundled(tmp_path, monkeypatch):
    monkeypatch.setenv("ALACGAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ALACGAN_WEIGHTS", raising=False)
    monkeypatch.delenv("ALACGAN_I2V", raising=False)
    assert resolve_model_files().weights_source == "bundled model"
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "netG.pth").write_bytes(b"x")
    (tmp_path / "home" / "i2v.pth").write_bytes(b"x")
    files = resolve_model_files()
    assert files.weights == tmp_path / "home" / "netG.pth" and files.i2v == tmp_path / "home" / "i2v.pth"
    monkeypatch.setenv("ALACGAN_WEIGHTS", "/env/g.pth")
    monkeypatch.setenv("ALACGAN_I2V", "/env/i2v.pth")
    files = resolve_model_files()
    assert (files.weights, files.weights_source, files.i2v) == (Path("/env/g.pth"), "ALACGAN_WEIGHTS",
                                                               Path("/env/i2v.pth"))
    (tmp_path / "flag").mkdir()
    for name in ("g.pth", "i.pth"):
        (tmp_path / "flag" / name).write_bytes(b"x")
    files = resolve_model_files(tmp_path / "flag" / "g.pth", tmp_path / "flag" / "i.pth")
    assert (files.weights, files.weights_source, files.i2v_source) == (tmp_path / "flag" / "g.pth", "--weights",
                                                                       "--i2v")
