"""Layers for compositing: split, recompose to the composed frame, background modes, layer files."""

import sys
import types

import cv2
import numpy as np
import pytest
from helpers import draw_frame, run_cli, write_image

from alacgan_batch import layers as layers_module
from alacgan_batch.compose import Finish, compose
from alacgan_batch.errors import ConfigError
from alacgan_batch.layers import (
    Layers,
    apply_background,
    background_mask,
    exr_writer_available,
    recompose,
    split_layers,
    write_exr,
    write_layers,
)
from alacgan_batch.regions import interiors, segment_regions
from alacgan_batch.sequence import lineart_from_array

SIZE = (90, 120)


def drawn_lines() -> np.ndarray:
    """uint8 grey: a circle and a rectangle (black, anti-aliased) on white paper, a line off the edge."""
    image = np.full(SIZE, 255, np.uint8)
    cv2.circle(image, (40, 45), 25, 0, 2, lineType=cv2.LINE_AA)
    cv2.rectangle(image, (75, 20), (110, 70), 0, 2)
    cv2.line(image, (70, 89), (119, 75), 0, 1, lineType=cv2.LINE_AA)  # a corner region that is still paper
    return image


def network_color(seed: int = 0) -> np.ndarray:
    """A plausible network output: a random colour per area, shaded left to right, with a little noise."""
    rng = np.random.default_rng(seed)
    _, areas = cv2.connectedComponents((drawn_lines() > 200).astype(np.uint8), connectivity=4)
    base = rng.uniform(0.2, 0.9, (areas.max() + 1, 3))[areas]
    ramp = np.linspace(0.75, 1.1, SIZE[1])[None, :, None]
    color = base * ramp + rng.normal(0, 0.01, (*SIZE, 3))
    return np.clip(color, 0, 1).astype(np.float32)


def regions(lineart) -> np.ndarray:
    _, labels = cv2.connectedComponents((~lineart.line_mask).astype(np.uint8), connectivity=4)
    return labels.astype(np.int32)


def lineart_8bit():
    return lineart_from_array(drawn_lines().astype(np.float32) / 255.0)


def lineart_16bit():
    grey = cv2.GaussianBlur(drawn_lines(), (3, 3), 0).astype(np.uint16) * 257 + 100  # off the 8-bit grid
    grey = np.clip(grey.astype(np.int64) - 200, 0, 65535).astype(np.uint16)
    return lineart_from_array(grey.astype(np.float32) / 65535.0, bit_depth=16)


def lineart_rgba():
    """Lines in the alpha channel (black ink on transparent film), as some studios deliver them."""
    ink = 255 - drawn_lines()
    rgba = np.zeros((*SIZE, 4), np.float32)
    rgba[..., 3] = ink / 255.0
    return lineart_from_array(rgba)


def test_frame_has_the_regions_it_should():
    labels = regions(lineart_8bit())
    assert labels.max() >= 4  # outside, inside circle, inside rectangle, the corner cut off by the line


@pytest.mark.parametrize("make", [lineart_8bit, lineart_16bit, lineart_rgba])
@pytest.mark.parametrize("working_size", [False, True])
def test_recompose_gives_the_composed_frame(make, working_size):
    lineart = make()
    color = network_color()
    if working_size:  # the network's colour before it is resized back: both sides resize it the same way
        color = cv2.resize(color, (64, 48), interpolation=cv2.INTER_AREA)
    expected = compose(color, lineart)
    layers = split_layers(color, lineart, regions(lineart))
    got = recompose(layers)
    assert got.shape == expected.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2
    lines = lineart.line_mask
    assert lines.sum() > 100
    np.testing.assert_array_equal(got[lines], lineart.rgb8()[lines])  # drawn lines exact


def test_flat_has_one_colour_per_region_and_shading_is_clear_where_colour_is_flat():
    lineart = lineart_8bit()
    labels = regions(lineart)
    color = network_color(1)
    layers = split_layers(color, lineart, labels)
    assert layers.flat.dtype == np.uint8 and layers.flat.shape == (*SIZE, 4)
    assert (layers.flat[..., 3] == 255).all()
    for label in range(1, labels.max() + 1):
        colours = np.unique(layers.flat[labels == label][:, :3], axis=0)
        assert len(colours) == 1, f"region {label} has {len(colours)} flat colours"
        region_colours = np.round(color[interiors(labels) == label] * 255)  # the colour flatten paints
        np.testing.assert_allclose(colours[0], np.median(region_colours, axis=0), atol=0.5)

    color8 = np.round(color * 255).astype(np.uint8)
    same = np.all(color8 == layers.flat[..., :3], axis=2)
    assert same.any() and (~same).any()
    assert (layers.shading[same, 3] == 0).all()
    assert (layers.shading[~same, 3] > 0).all()
    # shading over flat (normal blend) gives the colour back exactly
    alpha = layers.shading[..., 3:].astype(int)
    blended = (alpha * layers.shading[..., :3] + (255 - alpha) * layers.flat[..., :3].astype(int) + 127) // 255
    np.testing.assert_array_equal(blended, color8)


def test_shadow_is_a_dark_partial_layer():
    lineart = lineart_from_array(np.ones((20, 20), np.float32))
    color = np.full((20, 20, 3), 0.8, np.float32)
    color[:, 14:] *= 0.5  # a third of the (single) region in shadow: half as bright
    layers = split_layers(color, lineart, np.ones((20, 20), np.int32))
    assert (layers.flat[..., :3] == 204).all()
    assert (layers.shading[:, :14, 3] == 0).all()
    shadow = layers.shading[:, 14:]
    assert (shadow[..., :3] <= 1).all() and (np.abs(shadow[..., 3].astype(int) - 128) <= 1).all()  # black, 50%


def test_16bit_input_gives_a_16bit_line_layer_with_coverage_alpha():
    lineart = lineart_16bit()
    layers = split_layers(network_color(), lineart, regions(lineart))
    assert layers.line.dtype == np.uint16 and layers.line.shape == (*SIZE, 4)
    expected = np.round(lineart.coverage.astype(np.float64) * 65535)
    assert np.abs(layers.line[..., 3].astype(np.int64) - expected).max() == 0
    assert layers.flat.dtype == np.uint8 and layers.shading.dtype == np.uint8
    assert split_layers(network_color(), lineart_8bit(), None).line.dtype == np.uint8


def test_line_layer_is_black_ink_at_coverage_over_white():
    lineart = lineart_8bit()
    layers = split_layers(network_color(), lineart, None)
    np.testing.assert_array_equal(layers.line[..., 3], 255 - drawn_lines())
    inked = layers.line[..., 3] > 0
    assert (layers.line[inked][:, :3] == 0).all()
    assert (layers.line[~inked] == 0).all()


def test_transparent_background_cuts_out_the_outside_and_keeps_the_inside():
    lineart = lineart_8bit()
    labels = regions(lineart)
    rgb = compose(network_color(), lineart)
    out = apply_background(rgb, lineart, labels, "transparent")
    assert out.shape == (*SIZE, 4) and out.dtype == np.uint8
    alpha = out[..., 3]
    outside, circle, rectangle, corner = labels[2, 2], labels[45, 40], labels[45, 92], labels[88, 118]
    assert len({outside, circle, rectangle, corner}) == 4
    ink = 255 - drawn_lines()  # line coverage in 8 bits
    paper = ink == 0
    assert (alpha[(labels == outside) & paper] == 0).all()
    assert (alpha[(labels == corner) & paper] == 0).all()  # paper touching the border is background too
    # what is left of the background is the lines' own matte: the anti-aliased fringe at its coverage
    np.testing.assert_array_equal(alpha[labels == outside], ink[labels == outside])
    assert (alpha[labels == circle] == 255).all() and (alpha[labels == rectangle] == 255).all()
    assert (alpha[lineart.line_mask] == 255).all()
    np.testing.assert_array_equal(out[..., :3][alpha == 255], rgb[alpha == 255])
    # the outer anti-aliased fringe keeps its coverage as alpha, in the line's colour
    fringe = (alpha > 0) & (alpha < 255)
    assert fringe.any() and (out[fringe][:, :3] == 0).all()
    np.testing.assert_array_equal(background_mask(lineart, labels), (alpha < 255) & ~lineart.line_mask)

    layers = split_layers(network_color(), lineart, labels, background="transparent")
    assert (layers.flat[..., 3][labels == outside] == 0).all()
    assert (layers.shading[..., 3][labels == outside] == 0).all()
    again = recompose(layers)
    assert again.shape == (*SIZE, 4)
    np.testing.assert_array_equal(again[..., 3], alpha)
    visible = alpha > 0
    assert np.abs(again[visible].astype(int) - out[visible].astype(int)).max() <= 2


def test_filled_region_on_the_border_stays_opaque():
    grey = drawn_lines()
    grey[:, :6] = 40  # a dark fill (hair, a shadow shape) along the left edge, inside the outside region
    lineart = lineart_from_array(grey.astype(np.float32) / 255.0)
    labels = regions(lineart)
    labels[:, :6] = labels.max() + 1  # its own region
    out = apply_background(compose(network_color(), lineart), lineart, labels, "transparent")
    assert (out[:, :6, 3] == 255).all()
    assert out[2, 20, 3] == 0


def test_keep_copies_input_alpha_and_white_is_rgb():
    lineart = lineart_rgba()
    rgb = compose(network_color(), lineart)
    kept = apply_background(rgb, lineart, None, "keep")
    np.testing.assert_array_equal(kept[..., 3], 255 - drawn_lines())
    np.testing.assert_array_equal(kept[..., :3], rgb)
    opaque = apply_background(rgb, lineart_8bit(), None, "keep")
    assert (opaque[..., 3] == 255).all()
    assert apply_background(rgb, lineart, None, "white") is rgb
    layers = split_layers(network_color(), lineart, None, background="keep")
    np.testing.assert_array_equal(layers.flat[..., 3], 255 - drawn_lines())


def test_unknown_background_mode_is_a_config_error():
    lineart = lineart_8bit()
    rgb = compose(network_color(), lineart)
    with pytest.raises(ConfigError, match="unknown background mode 'green'"):
        apply_background(rgb, lineart, None, "green")
    with pytest.raises(ConfigError, match="unknown background mode"):
        split_layers(network_color(), lineart, None, background="alpha")


def test_write_layers_writes_three_pngs_at_size_and_depth(tmp_path):
    for make, line_dtype in ((lineart_8bit, np.uint8), (lineart_16bit, np.uint16)):
        lineart = make()
        layers = split_layers(network_color(), lineart, regions(lineart), background="transparent")
        paths = write_layers(tmp_path / "layers", "shot.1001", layers)
        assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
            "layers/line/shot.1001.png", "layers/flat/shot.1001.png", "layers/shading/shot.1001.png"]
        for path, dtype, layer in zip(paths, (line_dtype, np.uint8, np.uint8),
                                      (layers.line, layers.flat, layers.shading), strict=True):
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            assert image.shape == (*SIZE, 4) and image.dtype == dtype
            np.testing.assert_array_equal(cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA), layer)
        assert not list(tmp_path.rglob("*.partial*"))  # atomic: no temp files left


def test_layers_round_trip_through_files(tmp_path):
    lineart = lineart_16bit()
    layers = split_layers(network_color(), lineart, regions(lineart))
    paths = write_layers(tmp_path, "f", layers)
    read = [cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA) for p in paths]
    np.testing.assert_array_equal(recompose(Layers(*read)), recompose(layers))


def test_write_exr_without_a_backend_is_a_config_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "OpenEXR", None)  # import fails as if not installed
    monkeypatch.setattr(cv2, "haveImageWriter", lambda name: False)
    with pytest.raises(ConfigError, match=r"pip install alacgan-batch\[exr\]"):
        write_exr(tmp_path / "a.exr", np.zeros((4, 4, 3), np.float32))
    assert not list(tmp_path.iterdir())
    assert not exr_writer_available()
    # a run into an EXR pattern is refused before its plan pass, not at its first frame
    for i in range(2):
        write_image(tmp_path / "frames" / f"shot.{i + 1:04d}.png", draw_frame((48, 64), shift=i))
    code, _, stderr = run_cli(["colorize", tmp_path / "frames", "--engine", "flat", "-o",
                               tmp_path / "out" / "f.####.exr"], capsys)
    assert code == 2 and "pip install alacgan-batch[exr]" in stderr and stderr.count("error:") == 1
    assert not (tmp_path / "out").exists()


def test_write_exr_uses_openexr_when_installed(tmp_path, monkeypatch):
    written = {}

    class File:  # the OpenEXR >= 3.3 API: File(header, channels), .write(path), a context manager
        def __init__(self, header, channels):
            written.update(header=header, channels=channels)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, path):
            with open(path, "wb") as handle:
                handle.write(b"v/1\x01exr")

    fake = types.SimpleNamespace(File=File, ZIP_COMPRESSION="zip", scanlineimage="scanline")
    monkeypatch.setitem(sys.modules, "OpenEXR", fake)
    rgb = np.random.default_rng(0).random((5, 6, 3)).astype(np.float64)
    path = write_exr(tmp_path / "out" / "a.exr", rgb)
    assert path.read_bytes() == b"v/1\x01exr" and sorted(p.name for p in path.parent.iterdir()) == ["a.exr"]
    assert written["header"] == {"compression": "zip", "type": "scanline"}
    assert written["channels"]["RGB"].dtype == np.float32 and written["channels"]["RGB"].shape == (5, 6, 3)


def test_finish_with_layers_and_transparent_background_shares_one_matte(monkeypatch):
    """The frame's line layer and background cut are worked out once for both, and give the same pixels."""
    lineart = lineart_from_array(drawn_lines().astype(np.float32) / 255.0)
    color = network_color()
    calls = []
    real = layers_module._line_layer
    monkeypatch.setattr(layers_module, "_line_layer", lambda art: calls.append(1) or real(art))
    finished = Finish.create(background="transparent", layers=True).apply(color, lineart, None)
    assert len(calls) == 1
    background_mask(lineart)  # the cut alone needs no line layer
    assert len(calls) == 1
    labels = segment_regions(lineart.coverage)
    alone = apply_background(compose(color, lineart), lineart, labels, "transparent")
    np.testing.assert_array_equal(finished.final, alone)
    np.testing.assert_allclose(recompose(finished.layers), alone, atol=2)  # recompose: within 2 levels
