"""Frame sequences: folders, single images and fileseq patterns; missing frames; output names; bit depth."""

from pathlib import Path

import numpy as np
import pytest
from helpers import write_image

from alacgan_batch.errors import ConfigError, InputError, OutputError
from alacgan_batch.sequence import (
    FrameRef,
    bit_depth,
    discover_frames,
    is_pattern,
    missing_frames,
    output_path,
    read_lineart,
)

BLANK = np.full((6, 8), 255, np.uint8)


@pytest.fixture
def shot(tmp_path) -> Path:
    """shot.1001.png .. shot.1010.png, plus files a pattern must not pick up."""
    folder = tmp_path / "shot"
    for n in range(1001, 1011):
        write_image(folder / f"shot.{n}.png", BLANK)
    for name in ("other.1003.png", "shot.1003.tif", "shot_v2.1004.png", "shot.01005.png"):
        write_image(folder / name, BLANK)
    (folder / "shot.1006.png.txt").write_text("notes")
    return folder


def numbers(frames) -> list[int]:
    return [f.number for f in frames]


def tmp_path_folder(shot: Path) -> Path:
    """The shot without the distractor files: a plain folder of frames."""
    for path in shot.iterdir():
        if not (path.name.startswith("shot.") and path.suffix == ".png" and len(path.stem) == 9):
            path.unlink()
    return shot


@pytest.mark.parametrize("pattern", ["shot.####.png", "shot.%04d.png", "shot.@@@@.png", "shot.#.png",
                                     "shot.1001-1010#.png", "shot.1001-1010####.png"])
def test_each_pattern_form_finds_the_frames_in_order(shot, pattern):
    frames = discover_frames(shot / pattern)
    assert numbers(frames) == list(range(1001, 1011))
    assert [f.index for f in frames] == list(range(10))
    assert [f.name for f in frames] == [f"shot.{n}.png" for n in range(1001, 1011)]
    assert frames[0].label == "frame 1001"
    assert frames.missing == [] and frames.pattern == str(shot / pattern)


def test_pattern_as_string_and_explicit_subrange(shot):
    assert numbers(discover_frames(f"{shot}/shot.1003-1005#.png")) == [1003, 1004, 1005]
    assert numbers(discover_frames(shot / "shot.%04d.tif")) == [1003]


def test_frames_selects_by_number_with_a_step(shot):
    frames = discover_frames(shot / "shot.####.png", frames="1001-1010x2")
    assert numbers(frames) == [1001, 1003, 1005, 1007, 1009]
    assert [f.index for f in frames] == list(range(5))
    assert numbers(discover_frames(shot / "shot.####.png", frames="1008, 1002")) == [1002, 1008]
    # a folder is selected by number too
    folder = discover_frames(tmp_path_folder(shot), frames="1001-1010x2")
    assert numbers(folder) == [1001, 1003, 1005, 1007, 1009]


def test_missing_frame_is_an_error_naming_it(shot):
    (shot / "shot.1004.png").unlink()
    with pytest.raises(InputError, match=r"^missing frame 1004 in shot.####.png$"):
        discover_frames(shot / "shot.####.png")
    with pytest.raises(InputError, match="missing frame 1004"):
        discover_frames(shot / "shot.####.png", frames="1002-1006x2")
    assert numbers(discover_frames(shot / "shot.####.png", frames="1002-1010x4")) == [1002, 1006, 1010]


def test_missing_frames_are_listed_compactly_and_skip_returns_the_rest(shot):
    for n in (1003, 1007, 1008, 1009):
        (shot / f"shot.{n}.png").unlink()
    with pytest.raises(InputError, match=r"^missing 4 frames 1003, 1007-1009 in shot.%04d.png$"):
        discover_frames(shot / "shot.%04d.png")
    frames = discover_frames(shot / "shot.%04d.png", on_missing="skip")
    assert numbers(frames) == [1001, 1002, 1004, 1005, 1006, 1010]  # real numbers, never renumbered
    assert [f.index for f in frames] == list(range(6))
    assert frames.missing == [1003, 1007, 1008, 1009]
    assert missing_frames(shot / "shot.%04d.png") == [1003, 1007, 1008, 1009]
    assert missing_frames(shot / "shot.%04d.png", frames="1001-1006") == [1003]


def test_explicit_range_past_the_files_reports_the_missing_end(shot):
    with pytest.raises(InputError, match="missing frames 1011-1012 in shot.1001-1012#.png"):
        discover_frames(shot / "shot.1001-1012#.png")
    frames = discover_frames(shot / "shot.1001-1012#.png", on_missing="skip")
    assert numbers(frames) == list(range(1001, 1011)) and frames.missing == [1011, 1012]
    with pytest.raises(ConfigError, match="frames 1020 are outside shot.1001-1012#.png"):
        discover_frames(shot / "shot.1001-1012#.png", frames="1010,1020")


def test_padding_is_strict_and_large_numbers_still_match(tmp_path):
    for n in (998, 999, 10000):
        write_image(tmp_path / f"s.{n:04d}.png", BLANK)
    write_image(tmp_path / "s.00997.png", BLANK)  # 5-digit padding: another sequence
    frames = discover_frames(tmp_path / "s.####.png", frames="998-999,10000")
    assert numbers(frames) == [998, 999, 10000]
    assert numbers(discover_frames(tmp_path / "s.#####.png", frames="997,10000")) == [997, 10000]
    assert numbers(discover_frames(tmp_path / "s.@@@@@.png", frames="997")) == [997]


def test_folder_with_a_hole_in_one_padded_sequence_is_reported(tmp_path):
    for n in (1001, 1002, 1004):
        write_image(tmp_path / "a" / f"shot.{n:04d}.png", BLANK)
    with pytest.raises(InputError, match=r"missing frame 1003 in .*a/shot.####.png"):
        discover_frames(tmp_path / "a")
    frames = discover_frames(tmp_path / "a", on_missing="skip")
    assert numbers(frames) == [1001, 1002, 1004] and frames.missing == [1003]

    # a padded sequence that outgrows its width (9999 -> 10000): holes are still found
    for n in (9998, 9999, 10001):
        write_image(tmp_path / "wide" / f"shot.{n:04d}.png", BLANK)
    with pytest.raises(InputError, match=r"missing frame 10000"):
        discover_frames(tmp_path / "wide")

    # two sequences in one folder would be interleaved into one shot, their holes unchecked: refused, naming both
    for name in ("bg.0001.png", "bg.0005.png", "fg.0002.png"):
        write_image(tmp_path / "b" / name, BLANK)
    with pytest.raises(InputError, match=r"fg\.0002\.png in .*b is not a frame of its name, beside the frame "
                                         r"sequence bg\.####\.png"):
        discover_frames(tmp_path / "b")
    write_image(tmp_path / "b" / "fg.0003.png", BLANK)
    with pytest.raises(InputError, match=r"b holds 2 frame sequences \(bg\.####\.png, fg\.####\.png\): give"):
        discover_frames(tmp_path / "b")
    assert [f.name for f in discover_frames(tmp_path / "b" / "bg.####.png", on_missing="skip")] == \
        ["bg.0001.png", "bg.0005.png"]
    # so is a numbered image of another name beside one (a model sheet): it is not the shot's frame 12
    for n in (1, 2, 3):
        write_image(tmp_path / "c" / f"shot.{n:04d}.png", BLANK)
    write_image(tmp_path / "c" / "model_v12.png", BLANK)
    with pytest.raises(InputError, match=r"model_v12\.png in .*c is not a frame of its name, beside the frame "
                                         r"sequence shot\.####\.png: move it out, or give the pattern"):
        discover_frames(tmp_path / "c")
    # the pattern named is one that finds the frames, extension case included
    for n in (1, 2):
        write_image(tmp_path / "up" / f"shot.{n:04d}.PNG", BLANK)
    write_image(tmp_path / "up" / "ref.png", BLANK)
    with pytest.raises(InputError, match=r"give the pattern '.*up/shot\.####\.PNG'"):
        discover_frames(tmp_path / "up")
    assert numbers(discover_frames(tmp_path / "up" / "shot.####.PNG")) == [1, 2]
    # frames with text after the number are a sequence (holes checked, strays refused), but no pattern argument
    # can name them: none is offered, and a missing frame is reported in the folder
    for n in (1, 2, 4):
        write_image(tmp_path / "tail" / f"shot_{n:04d}_color.png", BLANK)
    with pytest.raises(InputError, match=r"^missing frame 3 in .*tail$"):
        discover_frames(tmp_path / "tail")
    write_image(tmp_path / "tail" / "ref.png", BLANK)
    with pytest.raises(InputError, match=r"ref\.png .* beside the frame sequence shot_####_color\.png: move it out$"):
        discover_frames(tmp_path / "tail")
    # nor frames whose extension is spelt two ways: a pattern's `.PNG` would find one frame of three
    write_image(tmp_path / "case" / "shot.0001.PNG", BLANK)
    for n in (2, 3):
        write_image(tmp_path / "case" / f"shot.{n:04d}.png", BLANK)
    assert numbers(discover_frames(tmp_path / "case")) == [1, 2, 3]
    write_image(tmp_path / "case" / "ref.png", BLANK)
    with pytest.raises(InputError, match=r"ref\.png .* beside the frame sequence shot\.####\.PNG: move it out$"):
        discover_frames(tmp_path / "case")


def test_folder_discovery_and_natural_order_unchanged(tmp_path, frames_dir):
    frames = discover_frames(frames_dir)
    assert numbers(frames) == [1, 2, 3, 4, 5] and frames[2].name == "shot.0003.png"
    for n in (10, 9, 100, 1):  # unpadded names: just ordered by number, holes are not a sequence's
        write_image(tmp_path / "loose" / f"f{n}.png", BLANK)
    assert numbers(discover_frames(tmp_path / "loose")) == [1, 9, 10, 100]
    for name in ("b.png", "a10.png", "a2.png"):
        write_image(tmp_path / "mixed" / name, BLANK)
    assert [f.name for f in discover_frames(tmp_path / "mixed")] == ["a2.png", "a10.png", "b.png"]
    write_image(tmp_path / "mixed" / "c05.png", BLANK)  # one padded-looking name among them is no sequence
    assert [f.name for f in discover_frames(tmp_path / "mixed")] == ["a2.png", "c05.png", "a10.png", "b.png"]
    assert [f.name for f in discover_frames(tmp_path / "mixed", frames="2,5")] == ["a2.png", "c05.png"]
    # an unnumbered image beside a padded sequence is not its last frame: refused, naming the pattern to give
    write_image(frames_dir / "ref.png", BLANK)
    (frames_dir / "shot.0003.png").unlink()
    with pytest.raises(InputError, match=r"ref\.png .* no frame number, beside the frame sequence shot\.####\.png"):
        discover_frames(frames_dir)
    with pytest.raises(InputError, match="missing frame 3"):  # the pattern leaves it out, and holes are checked
        discover_frames(frames_dir / "shot.####.png")
    single = discover_frames(frames_dir / "shot.0004.png")
    assert numbers(single) == [4] and single[0].index == 0
    assert isinstance(single, list) and isinstance(single[0], FrameRef)


def test_bad_sources_and_settings(tmp_path, shot):
    with pytest.raises(InputError, match="input not found"):
        discover_frames(tmp_path / "nope")
    with pytest.raises(InputError, match="input not found"):
        discover_frames(tmp_path / "nope" / "shot.####.png")
    with pytest.raises(InputError, match="no frames match take.####.png"):
        discover_frames(shot / "take.####.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no frames in"):
        discover_frames(tmp_path / "empty")
    with pytest.raises(ConfigError, match="cannot read frame range 'ten'"):
        discover_frames(shot, frames="ten")
    with pytest.raises(ConfigError, match="spans more than 10,000,000 frames"):  # not "cannot read"
        discover_frames(shot, frames="1-100000000")
    with pytest.raises(ConfigError, match="unknown on_missing"):
        discover_frames(shot, on_missing="ignore")
    with pytest.raises(InputError, match="none of frames 2001-2002"):
        discover_frames(shot / "shot.####.png", frames="2001-2002", on_missing="skip")


def test_is_pattern():
    for text in ("shot.####.png", "out/shot.%04d.png", "shot.@@@@.png", "shot.1001-1100#.png", "shot.$F4.png",
                 "shot_#.tif", Path("a/b.####.png")):
        assert is_pattern(text), text
    for text in ("shot.1001.png", "shot.png", "out", "out/", "key.png@12", "100%.png", Path("a/b/c")):
        assert not is_pattern(text), text
    assert is_pattern("shot.1-100#.png") and is_pattern("shot.0001-0100@@@@.png")


@pytest.mark.parametrize("output, name", [
    ("out/shot.####.png", "shot.1001.png"), ("out/shot.%04d.png", "shot.1001.png"),
    ("out/shot.@@@@.png", "shot.1001.png"), ("out/c_%06d.tif", "c_001001.tif"),
    ("out/c.#.png", "c.1001.png"), ("out/c.####", "c.1001.png"),
])
def test_output_path_keeps_number_and_padding(output, name):
    frame = FrameRef(Path("in/shot.1001.png"), 1001, 0)
    assert output_path(frame, output) == Path("out") / name
    early = FrameRef(Path("in/shot.0007.png"), 7, 0)
    assert output_path(early, "out/x.####.png") == Path("out/x.0007.png")
    assert output_path(early, "out/x.@@@@@@.png") == Path("out/x.000007.png")


def test_output_path_folder_and_refusals():
    frame = FrameRef(Path("in/shot.1001.tif"), 1001, 0)
    assert output_path(frame, "out") == Path("out/shot.1001.png")
    assert output_path(frame, Path("out"), default_ext=".exr") == Path("out/shot.1001.exr")
    with pytest.raises(OutputError, match="no frame number"):
        output_path(FrameRef(Path("in/key.png"), None, 0), "out/shot.####.png")
    with pytest.raises(OutputError, match="outside"):
        output_path(frame, "out/shot.1-100#.png")
    assert output_path(frame, "out/shot.1001-1100#.png") == Path("out/shot.1001.png")


def test_bit_depth_png_tiff_jpeg(tmp_path):
    grey8 = np.full((6, 8), 200, np.uint8)
    rgb16 = np.full((6, 8, 3), 40000, np.uint16)
    cases = {
        "g8.png": (grey8, 8), "g16.png": (grey8.astype(np.uint16) * 257, 16), "c16.png": (rgb16, 16),
        "g8.tif": (grey8, 8), "g16.tif": (grey8.astype(np.uint16) * 257, 16), "c16.tiff": (rgb16, 16),
        "c8.tif": (np.dstack([grey8] * 3), 8), "a16.tif": (np.dstack([rgb16, rgb16[..., :1]]), 16),
        "j.jpg": (grey8, 8),
    }
    for name, (image, depth) in cases.items():
        assert bit_depth(write_image(tmp_path / name, image)) == depth, name
    assert read_lineart(tmp_path / "c16.tiff").bit_depth == 16
    assert read_lineart(tmp_path / "c8.tif").bit_depth == 8
