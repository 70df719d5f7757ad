"""Where finished frames go: a folder or sequence pattern of PNGs (atomic, resumable), or a video file.

Both refuse, before any work, an output that would overwrite an input: a frame, the video, or a hint file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from .compose import Finished
from .errors import ConfigError, InputError, OutputError
from .sequence import FrameRef, is_pattern, output_path
from .sources import FolderSource, FrameSource, VideoSource
from .writer import remove_partials, write_bytes_atomic, write_json_atomic, write_png

log = logging.getLogger(__name__)

MANIFEST_NAME = "alacgan-manifest.json"
# a variable-rate video's frame times, beside its frames: mkvmerge's timestamp format v2 (milliseconds, a line a
# frame in order), which `mkvmerge --timestamps 0:take.timecodes.txt` takes
TIMECODES_SUFFIX = ".timecodes.txt"
MANIFEST_EVERY_SECONDS = 5.0  # how often the manifest's list of finished frames is brought up to date
# read with PyAV (libav), the usual camera, broadcast and web containers; written: see video.containers_for
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".mxf", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
                    ".wmv", ".flv", ".ogv", ".3gp")
FRAME_EXTENSIONS = (".png", ".exr")  # what FolderSink can write
LATER_SETTINGS = frozenset({"input"})  # recorded only since a later version: a manifest without them is no change


def is_video_path(path: Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_video_file(path: Path | str) -> bool:
    """An existing video file to read (a folder named `take.mov/` holds frames)."""
    return Path(path).is_file() and is_video_path(Path(path))


def default_output(source: Path, frame_source: FrameSource, codec: str = "h264") -> Path:
    """`shot/lineart/` -> `shot/lineart_color/`; `take.mp4` -> `take_color.mp4` (siblings, never the input). A video
    in a container `codec` cannot be written to (`take.webm` with h264) gets the codec's first one (`.mp4`)."""
    if isinstance(frame_source, VideoSource):
        from .video import containers_for

        writable = containers_for(codec)
        suffix = source.suffix if source.suffix.lower() in writable or not writable else writable[0]
        return source.with_name(f"{source.stem}_color{suffix}")
    base = frame_source.root
    return base.parent / f"{base.name}_color"


class Sink(Protocol):
    def todo(self) -> list[int]: ...
    def write(self, index: int, finished: Finished) -> Path: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...  # the run failed: leave what can be resumed, remove what cannot
    def __len__(self) -> int: ...  # frames this run is to write, already written or not (--frames: the selection)


def _check_writable(folder: Path) -> None:
    """Refuse, before the long plan pass, a folder that cannot be written (or created)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot write into {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into {existing} (permission denied)")


def _frames_output(output: Path, source: FrameSource) -> Path:
    """The folder or pattern frames are written to: a video's frames into a folder are numbered after it."""
    if isinstance(source, VideoSource) and not is_pattern(str(output)):
        return output / f"{source.path.stem}.####.png"
    return output


def timecodes_name(video: Path) -> str:
    """The file beside a video's frames that holds their times (`take.mp4` -> `take.timecodes.txt`)."""
    return f"{Path(video).stem}{TIMECODES_SUFFIX}"


def _recorded_timecodes(folder: Path) -> str | None:
    """The timecodes file the folder's manifest says a run wrote there, if any."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    name = manifest.get("timecodes") if isinstance(manifest, dict) else None
    return name if isinstance(name, str) else None


def _remove_made_folders(created: list[Path]) -> None:
    """Remove the folders a failed run made (innermost first), as long as nothing else is in them."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            break


def _refuse_earlier_frames(folder: Path, done: int, total: int) -> None:
    if done:
        raise OutputError(f"output {folder} already holds {done} of {total} frames; pass --resume to finish an "
                          "interrupted run or --overwrite to replace them")


class FolderSink:
    """One PNG per frame (same name, or the output pattern's numbering), written atomically, plus a manifest."""

    def __init__(self, output: Path, frames: list[FrameRef], source: FrameSource, settings: dict,
                 resume: bool = False, overwrite: bool = False, layers: bool = False,
                 hints: frozenset[Path] = frozenset(), only: set[int] | None = None) -> None:
        """`only`: the positions in `frames` to write (--frames); the others are planned through, not written, but
        an earlier run's files for them count as the folder's (refusals, manifest, completeness)."""
        self.check_target(output, source, hints)
        output = _frames_output(output, source)
        self.folder = output.parent if is_pattern(str(output)) else output
        self.targets = [output_path(frame, output) for frame in frames]
        self.selected = sorted(only) if only is not None else list(range(len(frames)))
        named: dict[Path, FrameRef] = {}
        for frame, target in zip(frames, self.targets, strict=True):
            if target in named:  # one frame's colour would silently replace the other's
                raise OutputError(f"{named[target].label} and {frame.label} would both be written to {target}; "
                                  "choose an output pattern that keeps them apart")
            named[target] = frame
        self.settings = settings
        self.layers = layers
        self.video = source if isinstance(source, VideoSource) else None
        self.timecodes: str | None = None  # the timecodes file this run wrote
        inputs = source.inputs | hints
        clash = next((t for t in self.targets if t.resolve() in inputs), None)
        if clash is not None:
            raise OutputError(f"output {clash} would overwrite an input file; choose another output with -o")
        self.done = self._prepare(resume, overwrite)

    def _write_timecodes(self, recorded: str | None) -> None:
        """Frames hold no time: a variable-rate video's go beside them (timecodes_name), a line for each frame
        written or to be written; at a constant rate none, and an earlier run's (`recorded`) is removed."""
        from .video import frame_time, variable_frame_times

        name = timecodes_name(self.video.path)
        times = variable_frame_times(self.video.path)
        if times is None:
            if recorded == name:
                (self.folder / name).unlink(missing_ok=True)
            return
        if len(times) != len(self.targets):
            log.warning("%s: %d frames for the video's %d frame times: %s may put frames off their own times "
                        "from where a packet decoded to no frame or to several", self.video.path,
                        len(self.targets), len(times), name)
        info = self.video.info
        duration = 1 / info.fps if info.fps else times[-1] / (len(times) - 1)  # past the times: the average rate
        lines = ["# timestamp format v2",
                 *(f"{float(frame_time(times, i, duration) * 1000):.3f}" for i in range(len(self.targets)))]
        write_bytes_atomic(self.folder / name, ("\n".join(lines) + "\n").encode())
        self.timecodes = name

    @staticmethod
    def check_target(output: Path, source: FrameSource, hints: frozenset[Path] = frozenset()) -> None:
        """Refuse an output folder that is a file, the input folder, or a hint folder (the next run would read
        its own colour frames as line art or hints)."""
        pattern = is_pattern(str(output))
        folder = output.parent if pattern else output
        if pattern and output.suffix.lower() not in FRAME_EXTENSIONS:
            raise OutputError(f"output pattern {output} must end in {' or '.join(FRAME_EXTENSIONS)}")
        if pattern and output.suffix.lower() == ".exr":
            from .layers import EXR_MISSING, exr_writer_available

            if not exr_writer_available():  # now, not at the first frame after the plan pass
                raise ConfigError(EXR_MISSING)
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"output {folder} exists and is not a folder")
        if isinstance(source, FolderSource) and folder.resolve() == source.root.resolve():
            raise OutputError(f"output folder {folder} is the input folder; choose another with -o")
        if folder.resolve() in {hint.parent for hint in hints}:
            raise OutputError(f"output folder {folder} holds hint files; choose another with -o")
        if isinstance(source, VideoSource):  # a file of that name no run of ours wrote is someone's: not replaced
            name = timecodes_name(source.path)
            if (folder / name).exists() and _recorded_timecodes(folder) != name:
                raise OutputError(f"output folder {folder} holds {name}, which no alacgan run there wrote (frame "
                                  "times go there); move it or choose another with -o")
        _check_writable(folder)

    @staticmethod
    def check_existing(output: Path, source: FrameSource, resume: bool, overwrite: bool) -> None:
        """The refusal of _prepare that needs no plan, so it comes before the long plan pass (a video's frames
        are counted from its header, read in full only by the plan)."""
        if resume or overwrite:
            return
        if isinstance(source, VideoSource):
            count = source.info.announced_frames or source.info.frame_count or 0
            frames = [FrameRef(source.path, i, i) for i in range(count)]
        else:
            frames = source.frames
        output = _frames_output(output, source)
        done = sum(output_path(frame, output).exists() for frame in frames)
        _refuse_earlier_frames(output.parent if is_pattern(str(output)) else output, done, len(frames))

    def _prepare(self, resume: bool, overwrite: bool) -> set[int]:
        """Indices already done (on --resume); refuses to mix runs or overwrite without being asked."""
        existing = {i for i, target in enumerate(self.targets) if target.exists()}
        manifest_path = self.folder / MANIFEST_NAME
        previous = None
        if manifest_path.exists():
            try:
                previous = json.loads(manifest_path.read_text())
            except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
                if resume:
                    raise OutputError(f"{manifest_path} is damaged ({exc}); use --overwrite to start again") from exc
            recorded = previous.get("done", []) if isinstance(previous, dict) else []
            if previous is not None and (not isinstance(previous, dict) or not isinstance(recorded, list)
                                         or not all(isinstance(name, str) for name in recorded)):
                if resume:
                    raise OutputError(f"{manifest_path} is damaged (not a JSON object, or 'done' not a list of "
                                      "names); use --overwrite to start again")
                previous = None
        # a key an older manifest lacks was not recorded then (`input` of a video, since 0.1): not a change
        changed = [k for k in self.settings if previous.get(k) != self.settings[k]
                   and (k in previous or k not in LATER_SETTINGS)] if previous is not None else None

        def named(key: str) -> str:  # "finish.lock_hints", not just "finish": which of a group's settings differs
            old, new = previous.get(key), self.settings[key]
            if not (isinstance(old, dict) and isinstance(new, dict)):
                return key
            return ", ".join(f"{key}.{k}" for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)) or key

        def made_with_these_settings(indices: set[int]) -> set[int]:
            """Of the frames on disk, those the manifest records as made with its settings (an --overwrite run
            with other settings may not have replaced them all); a manifest without `done` vouches for all."""
            if previous is None or "done" not in previous:
                return indices
            made = set(previous["done"])
            return {i for i in indices if self.targets[i].name in made}

        if resume:
            if previous is not None:
                if changed:
                    raise OutputError(f"--resume: settings differ from the run in {self.folder} "
                                      f"({', '.join(named(k) for k in changed)}); use --overwrite to start again")
                existing = made_with_these_settings(existing)
            elif existing:
                raise OutputError(f"--resume: {self.folder} has frames but no {MANIFEST_NAME}; use --overwrite")
            made = set(existing)
        elif not overwrite:
            _refuse_earlier_frames(self.folder, len(existing), len(self.targets))
            made = set()
        else:  # the selected frames are made again; the others stay done only if made with these settings
            made = made_with_these_settings(existing) - set(self.selected) if changed == [] else set()
            existing = set()
        self._created = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder {self.folder}: {exc.strerror or exc}") from exc
        remove_partials(self.folder, recursive=True)  # left by a run that was killed mid-write
        if self.video is not None:
            self._write_timecodes(previous.get("timecodes") if isinstance(previous, dict) else None)
        self.made = made  # the frames on disk made with these settings
        self._manifest_lock = threading.Lock()  # written from the writer thread, and by abort() on a signal
        self._write_manifest()
        return existing

    def _write_manifest(self) -> None:
        """The settings, every frame of the sequence, and which of them are on disk made with these settings (a
        frame written since the last rewrite is missing from `done`: a resume writes it again, no harm)."""
        with self._manifest_lock:
            done = [self.targets[i].name for i in sorted(self.made)]
            timecodes = {"timecodes": self.timecodes} if self.timecodes is not None else {}
            write_json_atomic(self.folder / MANIFEST_NAME, {**self.settings, **timecodes,
                                                            "frames": [t.name for t in self.targets],
                                                            "done": done, "complete": len(done) == len(self.targets)})
            self._manifest_time = time.monotonic()

    def __len__(self) -> int:
        return len(self.selected)

    def todo(self) -> list[int]:
        return [i for i in self.selected if i not in self.done]

    def write(self, index: int, finished: Finished) -> Path:
        target = self.targets[index]
        if self.layers and finished.layers is not None:
            from .layers import write_layers

            write_layers(self.folder / "layers", target.stem, finished.layers)
        # the frame itself last: a frame on disk means its layers are there too
        if target.suffix.lower() == ".exr":  # float EXR (the `exr` extra): the same values as the PNG would hold
            from .layers import write_exr

            write_exr(target, finished.final.astype(np.float32) / 255.0)
        else:
            write_png(target, finished.final)
        with self._manifest_lock:
            self.made.add(index)
        if time.monotonic() - self._manifest_time > MANIFEST_EVERY_SECONDS:
            self._write_manifest()
        return target

    def close(self) -> None:
        self._write_manifest()

    def abort(self) -> None:
        """A run that failed before its first frame leaves no folder holding only a manifest (nothing there to
        resume); once a frame is on disk, the frames and the manifest stay for --resume."""
        if self.done or any(target.exists() for target in self.targets):
            self._write_manifest()  # the frames this run wrote count as done
            return
        (self.folder / MANIFEST_NAME).unlink(missing_ok=True)
        if self.timecodes is not None:
            (self.folder / self.timecodes).unlink(missing_ok=True)
        _remove_made_folders(self._created)


class VideoSink:
    """Frames streamed into a video (atomic: a temp file renamed on success); audio copied from a video source.

    The encoder is opened when the sink is made, so a codec, container, quality or frame size it cannot take is
    refused then: before the long plan pass, which is why the pipeline makes it first."""

    def __init__(self, output: Path, source: FrameSource, codec: str = "h264", crf: int = 18, alpha: bool = False,
                 fps: Fraction = Fraction(24), overwrite: bool = False, hints: frozenset[Path] = frozenset(),
                 only: set[int] | None = None) -> None:
        """`only`: the positions of the source's frames that go into the video (--frames), in order."""
        from .video import VideoInfo, VideoWriter, variable_frame_times

        self.check_target(output, source, overwrite, hints)
        self.source, self.only = source, only
        if isinstance(source, VideoSource):
            # a variable frame rate is kept: only a video output reads every packet's time to tell it
            like = replace(source.info, has_alpha=source.info.has_alpha or alpha,
                           frame_times=variable_frame_times(source.path))
            audio = source.path if source.info.has_audio else None
        else:  # a frame sequence into a video: size from its first frame
            from .sequence import read_image

            selected = self.selected
            height, width = read_image(source.frames[selected[0]].path).shape[:2]
            like = VideoInfo(width=width, height=height, frame_count=len(selected), fps=fps,
                             time_base=1 / fps, pixel_aspect=Fraction(1), rotation=0, has_alpha=alpha,
                             has_audio=False, codec="png", pix_fmt="rgb24")
            audio = None
        self.path = output
        self.size = (like.height, like.width)
        self.frames = source.frames if isinstance(source, FolderSource) else None
        # the folders this run makes, innermost first: a failed or stopped run leaves none of them behind
        self._created = [p for p in output.parents if not p.exists()]
        remove_partials(output.parent, stem=output.stem)  # a temp video of a run that was killed
        try:
            self.writer = VideoWriter(output, like, codec=codec, crf=crf, audio_from=audio)
        except BaseException:
            _remove_made_folders(self._created)
            raise

    @property
    def selected(self) -> list[int]:
        """The positions of the frames that go into the video (a video source's are known once it is read)."""
        return sorted(self.only) if self.only is not None else list(range(len(self.source)))

    @staticmethod
    def check_target(output: Path, source: FrameSource, overwrite: bool = False,
                     hints: frozenset[Path] = frozenset()) -> None:
        _check_writable(output.parent)
        if output.resolve() in source.inputs | hints:
            raise OutputError(f"output {output} is an input of this run; choose another with -o")
        if output.exists() and output.is_dir():
            raise OutputError(f"output {output} is a folder, not a video file")
        if output.exists() and not overwrite:
            raise OutputError(f"output {output} already exists; pass --overwrite to replace it")

    def __len__(self) -> int:
        return len(self.selected)

    def todo(self) -> list[int]:
        return list(self.selected)

    def write(self, index: int, finished: Finished) -> Path:
        if finished.final.shape[:2] != self.size:
            name = self.frames[index].name if self.frames is not None else f"frame {index}"
            raise InputError(f"{name} is {finished.final.shape[1]}x{finished.final.shape[0]} but the video is "
                             f"{self.size[1]}x{self.size[0]}: every frame of a video must have one size")
        self.writer.write(finished.final)
        return self.path

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()
        _remove_made_folders(self._created)
