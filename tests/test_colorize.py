"""`alacgan colorize` end to end on small sequences, and what it does with bad input."""

import json
import os

import cv2
import numpy as np
import pytest
from helpers import draw_frame, run_cli, snapshot, stroke_image, write_image

from alacgan_batch import Colorizer, pipeline
from alacgan_batch.errors import InputError
from alacgan_batch.sequence import read_image
from alacgan_batch.temporal import LEAD_IN, WINDOW


def test_colorize_writes_every_frame_full_size_with_lines_untouched(frames_dir, tiny_model, tmp_path, capsys):
    hint = write_image(tmp_path / "key.png", stroke_image((72, 100), (30, 30), (255, 0, 0)))
    before = snapshot(frames_dir)
    out = tmp_path / "color"
    code, stdout, stderr = run_cli(["colorize", frames_dir, "--hints", f"{hint}@2", "-o", out,
                                    "--weights", tiny_model, "--json"], capsys)
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["frames"] == summary["written"] == 5 and summary["keyframes"] == ["shot.0002.png"]
    assert "tiny.safetensors" in stderr  # the model used is always reported
    assert snapshot(frames_dir) == before  # inputs untouched
    for frame in sorted(frames_dir.iterdir()):
        result = cv2.imread(str(out / frame.name), cv2.IMREAD_UNCHANGED)
        lineart = cv2.imread(str(frame), cv2.IMREAD_GRAYSCALE)
        assert result.shape == (72, 100, 3)
        lines = lineart < 128
        assert lines.sum() > 100
        assert np.array_equal(result[lines], np.repeat(lineart[lines][:, None], 3, axis=1))
    assert not [p for p in out.iterdir() if "partial" in p.name]


def test_no_lines_flag_and_default_sibling_output(frames_dir, tiny_model, capsys):
    code, _, stderr = run_cli(["colorize", frames_dir, "--weights", tiny_model, "--no-lines"], capsys)
    assert code == 0, stderr
    out = frames_dir.parent / "lineart_color"
    assert sorted(p.name for p in out.glob("*.png")) == sorted(p.name for p in frames_dir.iterdir())


def test_resume_finishes_an_interrupted_run_and_refuses_changed_settings(frames_dir, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(["colorize", frames_dir, "-o", out, "--weights", tiny_model], capsys)[0] == 0
    first = (out / "shot.0003.png").read_bytes()
    (out / "shot.0003.png").unlink()
    (out / "shot.0005.png").unlink()  # as if the run had stopped
    kept = (out / "shot.0001.png").stat().st_mtime_ns

    code, _, stderr = run_cli(["colorize", frames_dir, "-o", out, "--weights", tiny_model], capsys)
    assert code == 5 and "--resume" in stderr
    code, stdout, stderr = run_cli(["colorize", frames_dir, "-o", out, "--weights", os.path.relpath(tiny_model),
                                    "--resume", "--json"], capsys)  # the same model by another path
    assert code == 0, stderr
    assert json.loads(stdout)["written"] == 2
    assert (out / "shot.0003.png").read_bytes() == first  # deterministic: the same frame again
    assert (out / "shot.0001.png").stat().st_mtime_ns == kept
    code, _, stderr = run_cli(["colorize", frames_dir, "-o", out, "--weights", tiny_model, "--resume",
                               "--short-side", "64"], capsys)
    assert code == 5 and "short_side" in stderr

    # a model sheet edited between runs is a changed setting too, though its path is the same
    sheet = tmp_path / "sheet.json"
    sheet.write_text(json.dumps({"colors": ["#ff0000"]}))
    args = ["colorize", frames_dir, "-o", tmp_path / "sheeted", "--weights", tiny_model, "--palette", sheet]
    assert run_cli(args, capsys)[0] == 0
    (tmp_path / "sheeted" / "shot.0002.png").unlink()
    code, stdout, stderr = run_cli([*args[:-1], os.path.relpath(sheet), "--resume", "--json"], capsys)  # same
    assert code == 0 and json.loads(stdout)["written"] == 1, stderr
    (tmp_path / "sheeted" / "shot.0002.png").unlink()
    sheet.write_text(json.dumps({"colors": ["#0000ff"]}))
    code, _, stderr = run_cli([*args, "--resume"], capsys)
    assert code == 5 and "finish" in stderr

    # so is a hint edited between runs, though its path is the same
    hint = write_image(tmp_path / "key" / "shot.0001.png", stroke_image((72, 100), (30, 40), (0, 0, 255)))
    args = ["colorize", frames_dir, "-o", tmp_path / "hinted", "--weights", tiny_model, "--hints", hint]
    assert run_cli(args, capsys)[0] == 0
    (tmp_path / "hinted" / "shot.0002.png").unlink()
    write_image(hint, stroke_image((72, 100), (30, 40), (0, 255, 0)))
    code, _, stderr = run_cli([*args, "--resume"], capsys)
    assert code == 5 and "hints" in stderr

    # and so are frames another stabilizer made (a manifest of the one before the window: `"stabilize": true`)
    args = ["colorize", frames_dir, "-o", tmp_path / "held", "--weights", tiny_model]
    assert run_cli(args, capsys)[0] == 0
    manifest = tmp_path / "held" / "alacgan-manifest.json"
    assert json.loads(manifest.read_text())["stabilize"]["window"] == 2
    manifest.write_text(manifest.read_text().replace('"window": 2', '"window": 1'))
    (tmp_path / "held" / "shot.0002.png").unlink()
    code, _, stderr = run_cli([*args, "--resume"], capsys)
    assert code == 5 and "stabilize" in stderr


def test_api_colorize_image_matches_cli_output(frames_dir, tiny_model, tmp_path, capsys):
    # one image has no frame before it: compared with the sequence coloured frame by frame
    out = tmp_path / "out"
    assert run_cli(["colorize", frames_dir, "-o", out, "--weights", tiny_model, "--no-stabilize"], capsys)[0] == 0
    assert json.loads((out / "alacgan-manifest.json").read_text())["stabilize"] is False
    colorizer = Colorizer(weights=tiny_model, device="cpu")
    image = colorizer.colorize_image(frames_dir / "shot.0002.png")
    on_disk = (read_image(out / "shot.0002.png") * 255).round().astype(np.uint8)
    assert np.array_equal(image, on_disk)


def test_rgba_lines_in_alpha_and_16bit_input(tmp_path, tiny_model, capsys):
    alpha = 255 - np.asarray(cv2.imread(str(_one_frame(tmp_path)), cv2.IMREAD_GRAYSCALE))
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., 3] = alpha  # black lines that live in the alpha channel
    write_image(tmp_path / "alpha" / "a.0001.png", rgba)
    grey16 = (cv2.imread(str(_one_frame(tmp_path)), cv2.IMREAD_GRAYSCALE).astype(np.uint16) * 257)
    write_image(tmp_path / "deep" / "d.0001.png", grey16)
    for folder in ("alpha", "deep"):
        code, _, stderr = run_cli(["colorize", tmp_path / folder, "--weights", tiny_model], capsys)
        assert code == 0, stderr
        result = cv2.imread(str(next((tmp_path / f"{folder}_color").glob("*.png"))))
        lines = alpha >= 128
        # line pixels come through as drawn: black lines over white paper, alpha or 16-bit alike
        assert np.abs(result[lines].astype(int) - (255 - alpha[lines, None].astype(int))).max() <= 1


def test_the_flat_engine_on_lines_in_alpha_keeps_hinted_regions_opaque(tmp_path, capsys):
    alpha = 255 - draw_frame((40, 56))
    write_image(tmp_path / "alpha" / "a.0001.png", np.dstack([np.zeros((40, 56, 3), np.uint8), alpha]))
    hint = write_image(tmp_path / "key.png", stroke_image((40, 56), (16, 20), (0, 0, 255), radius=3))
    code, _, stderr = run_cli(["colorize", tmp_path / "alpha", "--hints", hint, "--engine", "flat", "-o",
                               tmp_path / "out"], capsys)
    assert code == 0, stderr
    result = cv2.imread(str(tmp_path / "out" / "a.0001.png"), cv2.IMREAD_UNCHANGED)
    # the rectangle's inside takes the stroke's blue, opaque, though the input's paper there is transparent;
    # the circle, never hinted, stays transparent
    assert np.array_equal(result[20, 16], [255, 0, 0, 255])
    assert result[20, 42, 3] == 0


@pytest.mark.parametrize("trace", [(230, 30, 30), (90, 160, 240)])  # red; a light blue, as bright as mid-grey
def test_a_colour_trace_line_is_a_region_border_and_stays_as_drawn(trace, tmp_path, capsys):
    # production line art: a shadow border drawn in colour splits the box in two, as a black line would
    paper = np.full((48, 64, 3), 255, np.uint8)
    cv2.rectangle(paper, (8, 8), (56, 40), (0, 0, 0), 2)
    cv2.line(paper, (32, 8), (32, 40), trace, 2)
    write_image(tmp_path / "trace" / "t.0001.png", paper)
    hint = write_image(tmp_path / "key.png", stroke_image((48, 64), (18, 24), (0, 200, 0), radius=3))
    code, _, stderr = run_cli(["colorize", tmp_path / "trace", "--hints", hint, "--engine", "flat", "-o",
                               tmp_path / "out"], capsys)
    assert code == 0, stderr
    result = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "t.0001.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    assert np.array_equal(result[24, 18], [0, 200, 0, 255])  # the hinted side takes the stroke's green
    assert result[24, 44, 3] == 0  # the stroke stops at the trace line: the other side stays unfilled
    assert np.array_equal(result[24, 32], [*trace, 255])  # the trace line keeps its colour in the output


def _one_frame(tmp_path):
    from helpers import draw_frame

    return write_image(tmp_path / "src.png", draw_frame((40, 56)))


@pytest.mark.parametrize("case", ["empty", "corrupt", "hint_size", "same_folder", "missing", "hint_frame"])
def test_bad_input_is_one_line_nonzero_and_changes_nothing(case, frames_dir, tiny_model, tmp_path, capsys):
    args = ["colorize", frames_dir, "-o", tmp_path / "out", "--weights", tiny_model]
    if case == "empty":
        (tmp_path / "empty").mkdir()
        args[1] = tmp_path / "empty"
    elif case == "corrupt":
        data = (frames_dir / "shot.0003.png").read_bytes()
        (frames_dir / "shot.0003.png").write_bytes(data[:60])
    elif case == "hint_size":
        args += ["--hints", str(write_image(tmp_path / "k.png", stroke_image((50, 50), (9, 9), (0, 0, 255)))) + "@1"]
    elif case == "same_folder":
        args[3] = frames_dir
    elif case == "missing":
        args[1] = tmp_path / "nowhere"
    elif case == "hint_frame":
        args += ["--hints", str(write_image(tmp_path / "k.png", stroke_image((72, 100), (9, 9), (0, 0, 255)))) + "@42"]
    before = snapshot(frames_dir)
    code, stdout, stderr = run_cli(args, capsys)
    assert code == 3 if case != "same_folder" else code == 5
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr
    assert snapshot(frames_dir) == before
    if case != "corrupt":
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.png"))


def test_presets_fill_settings_and_flags_override_them(frames_dir, tiny_model, tmp_path, capsys):
    code, stdout, stderr = run_cli(["colorize", frames_dir, "-o", tmp_path / "a", "--preset", "flat", "--json"],
                                   capsys)
    assert code == 0, stderr
    assert json.loads(stdout)["engine"] == "flat"
    code, stdout, _ = run_cli(["colorize", frames_dir, "-o", tmp_path / "b", "--preset", "flat", "--engine",
                               "network", "--weights", tiny_model, "--json"], capsys)
    assert code == 0 and json.loads(stdout)["engine"] == "network"
    code, _, stderr = run_cli(["colorize", frames_dir, "--preset", "nosuch"], capsys)
    assert code == 2 and "unknown preset" in stderr


def test_the_api_takes_presets_as_the_cli_does_and_final_keeps_the_models_own_size(frames_dir, tmp_path, capsys):
    from alacgan_batch import Colorizer, colorize_sequence

    final = Colorizer.from_preset("final", device="cpu")
    trained = final.model.spec.working_short_side
    assert trained == 256  # the bundled model's: final must not run it at the paper's 512
    assert (final.engine_name, final.short_side) == ("hybrid", trained)
    assert Colorizer.from_preset("draft", device="cpu").short_side == 256
    # hinted regions are held to their strokes' colour by default; the paper preset keeps the network's own
    assert Colorizer(device="cpu").finish.lock_hints
    assert not Colorizer.from_preset("paper", device="cpu").finish.lock_hints
    assert not final.finish.lock_hints  # hybrid fills hinted regions flat: nothing to shift
    assert Colorizer.from_preset("final", engine="flat", short_side=None).engine_name == "flat"  # None: unset
    summary = colorize_sequence(frames_dir, output=tmp_path / "api", preset="flat")
    code, stdout, _ = run_cli(["colorize", frames_dir, "-o", tmp_path / "cli", "--preset", "flat", "--json"], capsys)
    assert code == 0 and summary.engine == json.loads(stdout)["engine"] == "flat"
    assert snapshot(tmp_path / "api").keys() == snapshot(tmp_path / "cli").keys()
    assert all((tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
               for name in snapshot(tmp_path / "api") if name.endswith(".png"))


def test_bundled_model_puts_hint_colours_where_the_hints_are(tmp_path, capsys):
    """The shipped, trained model: strokes pull their regions to the stroke colour (see model/MODEL_CARD.md)."""
    from alacgan_batch import metrics, synth

    frame = synth.make_frame(1_100_000_007, size=(256, 256))
    strokes = synth.draw_hint_strokes(frame, np.random.default_rng(3))
    write_image(tmp_path / "in" / "f.0001.png", frame.lineart)
    write_image(tmp_path / "hints" / "f.0001.png", strokes)
    results = {}
    for name, hint_args in (("hinted", ["--hints", tmp_path / "hints"]), ("plain", [])):
        # the model's own colours: not shifted to the strokes' afterwards (the next test covers that)
        code, _, stderr = run_cli(["colorize", tmp_path / "in", "-o", tmp_path / name, "--no-lock-hints",
                                   *hint_args], capsys)
        assert code == 0 and "bundled model" in stderr, stderr
        results[name] = cv2.cvtColor(cv2.imread(str(tmp_path / name / "f.0001.png")), cv2.COLOR_BGR2RGB)
    on_strokes = strokes[..., 3] > 0
    error = {k: metrics.delta_e(v[on_strokes], strokes[..., :3][on_strokes]).mean() for k, v in results.items()}
    assert error["hinted"] < 20 and error["hinted"] < 0.5 * error["plain"]
    paper = metrics.non_line_mask(frame.lineart)
    hinted_share = metrics.hint_region_accuracy(results["hinted"], strokes, frame.labels, mask=paper)
    plain_share = metrics.hint_region_accuracy(results["plain"], strokes, frame.labels, mask=paper)
    assert hinted_share > plain_share + 0.1
    # the shipped model spreads strokes over their regions (hint_spread): the whole hinted area follows them,
    # the background included (stage 2 of the model, without the spread, scored 0.16 on this frame)
    assert hinted_share >= 0.85


def test_hinted_regions_take_their_strokes_colour_unless_lock_hints_is_off(tmp_path, capsys):
    from alacgan_batch import synth
    from alacgan_batch.regions import interiors, region_medians, region_stroke_colors, segment_regions
    from alacgan_batch.sequence import read_lineart

    frame = synth.make_frame(1_100_000_007, size=(256, 256))
    strokes = synth.draw_hint_strokes(frame, np.random.default_rng(3))
    write_image(tmp_path / "in" / "f.0001.png", frame.lineart)
    write_image(tmp_path / "hints" / "f.0001.png", strokes)
    labels = segment_regions(read_lineart(tmp_path / "in" / "f.0001.png").coverage)
    stroke_color, stroked = region_stroke_colors(labels, strokes)
    stroked &= np.bincount(labels.ravel(), minlength=len(stroked)) >= 50
    assert stroked.sum() >= 5
    errors = {}
    for name, lock in (("locked", "--lock-hints"), ("network", "--no-lock-hints")):
        # --no-lines: the colour as finished, before the line art darkens the pixels along the lines
        code, stdout, stderr = run_cli(["colorize", tmp_path / "in", "--hints", tmp_path / "hints", "-o",
                                        tmp_path / name, "--no-lines", lock, "--json"], capsys)
        assert code == 0, stderr
        manifest = json.loads((tmp_path / name / "alacgan-manifest.json").read_text())
        assert manifest["finish"].get("lock_hints", False) == (name == "locked")
        output = np.round(read_image(tmp_path / name / "f.0001.png")[..., :3] * 255).astype(np.uint8)
        medians, _ = region_medians(output, interiors(labels))  # the median the lock sets (and flatten paints)
        errors[name] = np.abs(medians[stroked].astype(int) - stroke_color[stroked].astype(int)).max(axis=1)
    assert (errors["locked"] == 0).all()
    assert (errors["network"] > 2).mean() >= 0.5  # the network alone comes near the strokes' colour, not onto it


def test_runs_without_lock_hints_resume_as_before_it_existed_and_a_change_is_named(frames_dir, tiny_model, tmp_path,
                                                                                      capsys):
    hint = write_image(tmp_path / "key.png", stroke_image((72, 100), (30, 30), (255, 0, 0)))
    out = tmp_path / "color"
    base = ["colorize", frames_dir, "--hints", f"{hint}@2", "-o", out, "--weights", tiny_model]
    code, _, stderr = run_cli([*base, "--no-lock-hints"], capsys)
    assert code == 0, stderr
    # a manifest from before the option: its finish settings have no lock_hints, as a run without the lock
    assert "lock_hints" not in json.loads((out / "alacgan-manifest.json").read_text())["finish"]
    (out / "shot.0004.png").unlink()
    code, _, stderr = run_cli([*base, "--resume"], capsys)  # the lock is on by default: other colours
    assert code == 5 and "finish.lock_hints" in stderr and not (out / "shot.0004.png").exists()
    code, _, stderr = run_cli([*base, "--resume", "--no-lock-hints"], capsys)
    assert code == 0 and (out / "shot.0004.png").exists(), stderr
    # given on purpose to an engine that fills hinted regions flat: said, not silently dropped
    code, _, stderr = run_cli(["colorize", frames_dir, "-o", tmp_path / "flat", "--engine", "flat", "--lock-hints"],
                              capsys)
    assert code == 0 and "--lock-hints is for the network engine" in stderr


def test_runs_that_took_region_colours_over_the_whole_region_are_not_resumed_into(frames_dir, tiny_model, tmp_path,
                                                                                  capsys):
    out = tmp_path / "color"
    base = ["colorize", frames_dir, "-o", out, "--weights", tiny_model, "--flatten", "--no-lock-hints"]
    code, _, stderr = run_cli(base, capsys)
    assert code == 0, stderr
    manifest_path = out / "alacgan-manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["finish"]["region_color"] == "interior median"
    del manifest["finish"]["region_color"]  # as an older run wrote it: flatten painted the whole region's median
    manifest_path.write_text(json.dumps(manifest))
    (out / "shot.0004.png").unlink()
    code, _, stderr = run_cli([*base, "--resume"], capsys)
    assert code == 5 and "finish.region_color" in stderr and not (out / "shot.0004.png").exists()
    # the flat engine paints every region one colour, which either median gives: old runs resume
    code, _, stderr = run_cli(["colorize", frames_dir, "-o", tmp_path / "flat", "--engine", "flat", "--flatten",
                               "--layers"], capsys)
    assert code == 0, stderr
    assert "region_color" not in json.loads((tmp_path / "flat" / manifest_path.name).read_text())["finish"]
    # nothing judged by region colour (no lock, flatten, palette or layers): nothing recorded, old runs resume
    code, _, stderr = run_cli(["colorize", frames_dir, "-o", tmp_path / "plain", "--weights", tiny_model,
                               "--no-lock-hints"], capsys)
    assert code == 0, stderr
    assert "region_color" not in json.loads((tmp_path / "plain" / manifest_path.name).read_text())["finish"]


def test_a_stroke_slipping_over_a_line_leaves_the_region_beyond_it_alone():
    lineart = np.full((192, 256), 255, np.uint8)
    cv2.rectangle(lineart, (20, 40), (128, 160), 0, 2)
    cv2.rectangle(lineart, (128, 40), (236, 160), 0, 2)
    strokes = np.zeros((192, 256, 4), np.uint8)
    strokes[96:99, 40:132] = (200, 40, 40, 255)  # in the left box, its end 2 px into the right one
    flat = Colorizer(engine="flat").colorize_image(lineart, strokes)
    assert flat[80, 74, 3] == 255 and tuple(flat[80, 74, :3]) == (200, 40, 40)
    assert flat[80, 182, 3] == 0  # the right box is left for the artist, not filled from the slip
    # the network engine: the right box comes out as if the stroke had stopped before the line (the network's
    # spread hint and the lock both leave the slip out), not red; the left box takes the stroke's colour
    short = strokes.copy()
    short[96:99, 126:132] = 0
    from alacgan_batch.metrics import delta_e

    colorizer = Colorizer(device="cpu")
    slipped, stopped = colorizer.colorize_image(lineart, strokes), colorizer.colorize_image(lineart, short)
    right = [np.median(image[60:140, 140:224].reshape(-1, 3), 0) for image in (slipped, stopped)]
    assert delta_e(right[0], right[1]) < 5 and delta_e(right[0], (200, 40, 40)) > 30
    assert np.abs(np.median(slipped[60:140, 32:116].reshape(-1, 3), 0) - (200, 40, 40)).max() <= 1


def test_api_colorize_image_takes_uint16_and_unit_floats_and_refuses_arrays_it_would_misread(frames_dir, tmp_path):
    from alacgan_batch import Colorizer

    colorizer = Colorizer(engine="flat", short_side=0)
    grey8 = cv2.imread(str(frames_dir / "shot.0002.png"), cv2.IMREAD_GRAYSCALE)
    strokes = stroke_image(grey8.shape, (30, 40), (0, 0, 255))
    reference = colorizer.colorize_image(grey8, strokes)
    assert (reference[..., 3] == 255).any()  # flat: the hinted region is filled, the rest clear
    # the same drawing as 16-bit and as float in [0, 1] gives the same frame (16-bit was read as mostly lines)
    assert np.array_equal(colorizer.colorize_image(grey8.astype(np.uint16) * 257, strokes), reference)
    assert np.array_equal(colorizer.colorize_image(grey8 / 255.0, strokes), reference)
    for bad, fragment in [(grey8.astype(np.float32), "divide 0-255 values by 255"),
                          (np.zeros((0, 5), np.uint8), "shape"), (grey8.astype(np.int64), "uint8, uint16 or float")]:
        with pytest.raises(InputError, match=fragment):
            colorizer.colorize_image(bad, strokes if bad.shape == grey8.shape else None)
    for bad_strokes in (strokes[..., :3], strokes.astype(np.float32) / 255.0, strokes[..., 0]):
        with pytest.raises(InputError, match="HxWx4 uint8 RGBA"):
            colorizer.colorize_image(grey8, bad_strokes)


@pytest.mark.parametrize("engine", ["flat", "network"])
def test_selected_frames_come_out_as_in_a_whole_run(engine, frames_dir, tiny_model, tmp_path, capsys):
    """A re-render of a few frames with the shot's hint folder: keyframes outside --frames still guide them."""
    for n, x in ((1, 30), (5, 34)):
        write_image(tmp_path / "hints" / f"shot.{n:04d}.png", stroke_image((72, 100), (x, 40), (230, 20, 20)))
    common = ["colorize", frames_dir, "--hints", tmp_path / "hints", "--engine", engine, "--batch-size", "1",
              *(["--weights", tiny_model] if engine == "network" else [])]
    assert run_cli([*common, "-o", tmp_path / "whole"], capsys)[0] == 0
    whole = snapshot(tmp_path / "whole")
    for n, selection in enumerate(["2-3", "1-5x2", "5", "4"]):  # between keys, a step, a keyframe, after a gap
        code, stdout, stderr = run_cli([*common, "-o", tmp_path / f"part{n}", "--frames", selection, "--json"],
                                       capsys)
        assert code == 0, stderr
        summary = json.loads(stdout)
        part = snapshot(tmp_path / f"part{n}")
        frames = sorted(k for k in part if k.endswith(".png"))
        assert summary["frames"] == summary["written"] == len(frames) and summary["keyframes"] == \
            ["shot.0001.png", "shot.0005.png"]
        assert frames == {"2-3": ["shot.0002.png", "shot.0003.png"], "5": ["shot.0005.png"], "4": ["shot.0004.png"],
                          "1-5x2": ["shot.0001.png", "shot.0003.png", "shot.0005.png"]}[selection]
        assert all(part[name] == whole[name] for name in frames), selection
        assert not json.loads(part["alacgan-manifest.json"])["complete"]  # the sequence has more frames
    if engine == "flat":  # the propagated red is there, not only the keyframes' own strokes
        red = read_image(tmp_path / "part0" / "shot.0003.png")
        assert red[40, 32, 0] > 0.8 and red[40, 32, 1] < 0.2 and red[40, 32, 3] > 0.9

    # into the whole run's folder: refused unless asked; --resume finds nothing to do; --overwrite replaces one
    code, _, stderr = run_cli([*common, "-o", tmp_path / "whole", "--frames", "4"], capsys)
    assert code == 5 and "5 of 5 frames" in stderr
    code, stdout, stderr = run_cli([*common, "-o", tmp_path / "whole", "--frames", "4", "--resume", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["written"] == 0, stderr
    (tmp_path / "whole" / "shot.0004.png").write_bytes(b"stale")
    code, _, stderr = run_cli([*common, "-o", tmp_path / "whole", "--frames", "4", "--overwrite"], capsys)
    assert code == 0, stderr
    assert snapshot(tmp_path / "whole") == whole  # manifest included: complete, the same settings

    # a stray unnumbered image is refused for the whole folder but does not stand in the way of a selection
    write_image(frames_dir / "ref.png", stroke_image((72, 100), (30, 40), (0, 0, 0)))
    assert run_cli([*common, "-o", tmp_path / "part9"], capsys)[0] == 3
    assert run_cli([*common, "-o", tmp_path / "part9", "--frames", "2-3"], capsys)[0] == 0
    assert snapshot(tmp_path / "part9")["shot.0003.png"] == whole["shot.0003.png"]


def test_frames_late_in_a_long_shot_are_led_into_by_a_bounded_run(tiny_model, tmp_path, monkeypatch):
    """--frames and --resume colour (without writing) at most LEAD_IN frames before a frame to write and WINDOW
    after it, not the whole shot before it, and the frames still come out as a whole run writes them: the
    stabilizer's memory of a frame fades below rounding within LEAD_IN frames, and its median looks WINDOW ahead."""
    frames = LEAD_IN + 9
    for i in range(1, frames + 1):  # a rectangle sliding right a pixel every 4 frames beside a circle
        write_image(tmp_path / "lineart" / f"shot.{i:04d}.png", draw_frame((72, 100), shift=i // 4))
    write_image(tmp_path / "hints" / "shot.0001.png", stroke_image((72, 100), (30, 40), (230, 20, 20)))
    colorizer = Colorizer(weights=tiny_model, batch_size=1, device="cpu")
    infer, coloured = colorizer._infer, []
    monkeypatch.setattr(colorizer, "_infer", lambda items: coloured.extend(i.key for i in items) or infer(items))

    def run(output: str, names: range, **options) -> list[np.ndarray]:
        coloured.clear()
        colorizer.colorize_sequence(tmp_path / "lineart", [tmp_path / "hints"], tmp_path / output, **options)
        return [read_image(tmp_path / output / f"shot.{i:04d}.png") for i in names]

    last, middle = range(frames - 2, frames + 1), range(LEAD_IN + 2, LEAD_IN + 4)
    whole = run("whole", range(1, frames + 1))
    assert coloured == list(range(frames))
    for output, names, options in (("part", last, {"frames": f"{frames - 2}-{frames}"}),
                                   ("middle", middle, {"frames": f"{middle[0]}-{middle[-1]}"}),
                                   ("whole", last, {"resume": True})):
        if options.get("resume"):
            for i in names:
                (tmp_path / "whole" / f"shot.{i:04d}.png").unlink()
        part = run(output, names, **options)
        # the shot's first frames are not coloured again, nor more than WINDOW frames after the last one to write
        assert coloured == list(range(max(0, names[0] - 1 - LEAD_IN), min(frames, names[-1] + WINDOW))), output
        for a, b in zip(part, [whole[i - 1] for i in names], strict=True):
            assert np.abs(a - b).max() <= 1 / 255 + 1e-6, output


def test_a_failure_while_finishing_writes_nothing_after_it_and_a_resume_comes_out_whole(tiny_model, tmp_path,
                                                                                          monkeypatch):
    """Frames queued behind a failed frame are not finished (the stabilizer would have missed a frame) nor recorded
    as done; a resume then writes the shot as a run without the failure does."""
    for i in range(1, 11):
        write_image(tmp_path / "lineart" / f"shot.{i:04d}.png", draw_frame((72, 100), shift=i))
    write_image(tmp_path / "hints" / "shot.0001.png", stroke_image((72, 100), (30, 40), (230, 20, 20)))
    colorizer = Colorizer(weights=tiny_model, batch_size=4, device="cpu")
    whole = tmp_path / "whole"
    colorizer.colorize_sequence(tmp_path / "lineart", [tmp_path / "hints"], whole)
    push = pipeline.Stabilizer.push

    def failing_push(self, key, *args):
        if key == 6:
            raise OSError("disk went away")
        return push(self, key, *args)

    monkeypatch.setattr(pipeline.Stabilizer, "push", failing_push)
    out = tmp_path / "out"
    with pytest.raises(OSError):
        colorizer.colorize_sequence(tmp_path / "lineart", [tmp_path / "hints"], out)
    written = sorted(p.name for p in out.glob("shot.*.png"))
    assert written == [f"shot.{i:04d}.png" for i in range(1, 5)]  # frames 0-3: finished before frame 6 came
    assert sorted(json.loads((out / "alacgan-manifest.json").read_text())["done"]) == written
    monkeypatch.setattr(pipeline.Stabilizer, "push", push)
    colorizer.colorize_sequence(tmp_path / "lineart", [tmp_path / "hints"], out, resume=True)
    for i in range(1, 11):
        name = f"shot.{i:04d}.png"
        assert np.abs(read_image(out / name) - read_image(whole / name)).max() <= 1 / 255 + 1e-6, name


def test_a_selection_that_fails_keeps_the_manifest_of_the_frames_around_it(frames_dir, tmp_path, capsys):
    common = ["colorize", frames_dir, "--engine", "flat", "-o", tmp_path / "out"]
    assert run_cli(common, capsys)[0] == 0
    manifest = (tmp_path / "out" / "alacgan-manifest.json").read_text()
    (tmp_path / "out" / "shot.0003.png").unlink()
    (frames_dir / "shot.0003.png").write_bytes(b"")  # found only when colouring: no hints, nothing to plan
    code, _, stderr = run_cli([*common, "--frames", "3", "--overwrite"], capsys)
    assert code == 3 and "shot.0003.png" in stderr
    assert json.loads((tmp_path / "out" / "alacgan-manifest.json").read_text())["frames"] == \
        json.loads(manifest)["frames"]


def test_frames_an_overwrite_with_other_settings_left_behind_are_not_resumed_as_done(frames_dir, tmp_path, capsys):
    common = ["colorize", frames_dir, "--engine", "flat", "-o", tmp_path / "out"]
    assert run_cli(common, capsys)[0] == 0
    lined = snapshot(tmp_path / "out")
    code, _, stderr = run_cli([*common, "--frames", "5", "--overwrite", "--no-lines"], capsys)
    assert code == 0, stderr
    manifest = json.loads((tmp_path / "out" / "alacgan-manifest.json").read_text())
    assert manifest["done"] == ["shot.0005.png"] and not manifest["complete"]  # 1-4 were made with lines
    assert run_cli([*common, "--resume"], capsys)[0] == 5  # the folder is now the no-lines run's
    code, stdout, stderr = run_cli([*common, "--resume", "--no-lines", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["written"] == 4, stderr
    unlined = snapshot(tmp_path / "out")
    assert all(unlined[f"shot.{n:04d}.png"] != lined[f"shot.{n:04d}.png"] for n in range(1, 6))
    assert json.loads(unlined["alacgan-manifest.json"])["complete"]
    # with the same settings, an --overwrite of one frame keeps the others done
    assert run_cli([*common, "--frames", "2", "--overwrite", "--no-lines"], capsys)[0] == 0
    assert json.loads((tmp_path / "out" / "alacgan-manifest.json").read_text())["complete"]


def test_frames_in_folders_a_selection_must_not_trip_over(frames_dir, tmp_path, capsys, monkeypatch):
    hint = stroke_image((72, 100), (30, 40), (230, 20, 20))
    write_image(tmp_path / "hints" / "shot.0001.png", hint)
    shot = frames_dir.rename(tmp_path / "sc#12.mov")  # named like a video, with a pattern character
    monkeypatch.chdir(tmp_path)
    args = ["colorize", shot.name, "--hints", tmp_path / "hints", "--engine", "flat", "--frames", "2-4", "--json"]
    code, stdout, stderr = run_cli([*args, "-o", tmp_path / "out"], capsys)
    assert code == 0 and json.loads(stdout)["written"] == 3, stderr
    write_image(shot / "ref_20261130.png", hint[..., :3])  # a numbered file of another name, a huge number
    code, stdout, stderr = run_cli([*args, "-o", tmp_path / "out2"], capsys)
    assert code == 0 and json.loads(stdout)["written"] == 3, stderr
    # loosely named drawings: a hint for the unnumbered one still has its frame
    loose = tmp_path / "loose"
    loose.mkdir()
    for name, source in (("a2.png", "shot.0002.png"), ("a10.png", "shot.0003.png"), ("b.png", "shot.0004.png")):
        (shot / source).rename(loose / name)
    for name in ("a2.png", "b.png"):
        write_image(tmp_path / "loose_hints" / name, hint)
    code, stdout, stderr = run_cli(["colorize", loose, "--hints", tmp_path / "loose_hints", "--engine", "flat", "-o",
                                    tmp_path / "loose_out", "--frames", "10", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["written"] == 1, stderr
    assert sorted(p.name for p in (tmp_path / "loose_out").iterdir()) == ["a10.png", "alacgan-manifest.json"]
    (shot / "shot.0001.png").rename(loose / "c05.png")  # one zero-padded name among them is not a sequence
    code, stdout, stderr = run_cli(["colorize", loose, "--engine", "flat", "-o", tmp_path / "loose_out2", "--frames",
                                    "2,5", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["written"] == 2, stderr


@pytest.mark.parametrize(("text", "fragment"), [("{}", "settings differ"), ("[1, 2]", "not a JSON object"),
                                                ("{trunc", "damaged")])
def test_a_damaged_manifest_is_never_resumed_into(text, fragment, frames_dir, tmp_path, capsys):
    common = ["colorize", frames_dir, "--engine", "flat", "-o", tmp_path / "out"]
    assert run_cli(common, capsys)[0] == 0
    (tmp_path / "out" / "shot.0002.png").unlink()
    (tmp_path / "out" / "alacgan-manifest.json").write_text(text)
    code, _, stderr = run_cli([*common, "--resume"], capsys)
    assert code == 5 and fragment in stderr and stderr.count("error:") == 1
    code, stdout, stderr = run_cli([*common, "--overwrite", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["written"] == 5, stderr
