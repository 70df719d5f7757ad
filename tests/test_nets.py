"""The networks: official sizes, shapes at any frame size, value ranges."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from alacgan_batch.checkpoints import ColorizationModel, ModelSpec
from alacgan_batch.engine import Engine, WorkItem
from alacgan_batch.nets import (
    Discriminator,
    Generator,
    GeneratorConfig,
    Illustration2VecFeatures,
    LineArtFeatures,
    VGG16Features,
)

LAYOUT = json.loads((Path(__file__).parent / "data" / "official_layout.json").read_text())


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_official_sizes_match_the_released_layout():
    assert n_params(Generator()) == LAYOUT["parameter_counts"]["NetG_ngf64"]
    assert n_params(Discriminator()) == LAYOUT["parameter_counts"]["NetD_ndf64"]
    assert n_params(Illustration2VecFeatures()) == LAYOUT["parameter_counts"]["NetI_truncated_i2v_15_layers"]
    assert n_params(VGG16Features()) == LAYOUT["parameter_counts"]["NetF_vgg16_features_0_8"]
    assert [[k, list(v.shape)] for k, v in Generator().state_dict().items()] == LAYOUT["NetG"]
    assert [[k, list(v.shape)] for k, v in Discriminator().state_dict().items()] == LAYOUT["NetD"]


@pytest.mark.parametrize("height,width", [(64, 64), (48, 96), (112, 80)])
def test_official_generator_and_features_shapes(height, width):
    torch.manual_seed(0)
    sketch = torch.rand(2, 1, height, width) * 2 - 1
    with torch.no_grad():
        features = Illustration2VecFeatures()(sketch)
        assert features.shape == (2, 512, height // 16, width // 16)
        assert features.min() >= 0  # ReLU activations
        out = Generator()(sketch, torch.zeros(2, 4, height // 4, width // 4), features)
    assert out.shape == (2, 3, height, width)
    assert out.abs().max() <= 1.0


def test_perceptual_features_and_critic_shapes():
    with torch.no_grad():
        assert VGG16Features()(torch.zeros(1, 3, 64, 48)).shape == (1, 128, 32, 24)
        critic = Discriminator(ndf=16, feature_channels=32, image_size=128)
        assert critic(torch.zeros(3, 3, 128, 128), torch.zeros(3, 32, 8, 8)).shape == (3, 1)
    with pytest.raises(ValueError):
        Discriminator(image_size=100)


@pytest.mark.parametrize("height,width", [(37, 50), (64, 64), (100, 33), (129, 130)])
def test_engine_accepts_any_frame_size(height, width):
    """Frames that are not multiples of 16 are padded for the network and cropped back."""
    torch.manual_seed(0)
    config = GeneratorConfig(ngf=16, feature_channels=32, depths=(1, 1, 1, 1))
    model = ColorizationModel(Generator(config).eval(), LineArtFeatures(32, 8).eval(),
                              ModelSpec(config, "lineart", 8), Path("x"))
    engine = Engine(model, device="cpu", batch_size=2)
    strokes = (np.ones((height, width, 3), np.float32), np.zeros((height, width), np.float32))
    items = [WorkItem(i, np.ones((height, width), np.float32), strokes if i else None) for i in range(3)]
    results = dict(engine.run(items))
    assert sorted(results) == [0, 1, 2]
    for color in results.values():
        assert color.shape == (height, width, 3)
        assert color.dtype == np.float32 and 0 <= color.min() and color.max() <= 1


@pytest.mark.parametrize("hint_spread", [False, True])
def test_engine_spreads_strokes_only_for_a_model_trained_so(tmp_path, hint_spread):
    """A model exported with `hint_spread` gets strokes filled over their regions; the paper's model does not."""
    from alacgan_batch.checkpoints import load_model, save_model

    config = GeneratorConfig(ngf=16, feature_channels=32, depths=(1, 1, 1, 1))
    path = tmp_path / "m.safetensors"
    save_model(path, Generator(config), LineArtFeatures(32, 8),
               ModelSpec(config, "lineart", 8, "m", extra={"hint_spread": True} if hint_spread else None))
    model = load_model(path)
    assert model.spec.hint_spread is hint_spread
    sketch = np.ones((40, 40), np.float32)  # [-1, 1]: a box of lines around (4..30, 4..30)
    sketch[4, 4:31] = sketch[30, 4:31] = -1.0
    sketch[4:31, 4] = sketch[4:31, 30] = -1.0
    rgb, mask = np.zeros((40, 40, 3), np.float32), np.zeros((40, 40), np.float32)
    rgb[16:18, 16:18], mask[16:18, 16:18] = (1.0, 0.5, 0.0), 1.0  # one orange dot inside the box
    _, hint = Engine(model, device="cpu")._batch_tensors([WorkItem(0, sketch, (rgb, mask))])
    weight = hint[0, 3]
    assert weight.shape == (12, 12)  # 40 padded to 48, quarter size
    assert weight[4, 4] == 1.0  # the dot's block
    if hint_spread:
        assert weight[2, 2] == 0.5 and weight[6, 5] == 0.5  # the box's inside, away from the dot
        assert weight[9, 9] == 0 and weight[0, 0] == 0  # outside the box: no strokes there
        # the spread colour goes through 8-bit region colours: 0.5 comes back as 128/255
        torch.testing.assert_close(hint[0, :3, 6, 5] / 0.5, torch.tensor([1.0, 0.0, -1.0]), atol=0.01, rtol=0)
    else:
        assert weight.sum() == 1.0  # the paper's encoding: only the drawn dot
