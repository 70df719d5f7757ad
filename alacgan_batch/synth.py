"""Procedural cel-style anime frames and short shots, with exact ground truth.

A seeded character (torso, clothing bands, arms, legs, head, eyes, hair, optional skirt,
sleeves, trousers and shoes) is built from closed polygons in "character units" (the
character is about one unit tall) and moved over a shot: translation, small rotation, zoom
and a walk-like swing of the limbs. An optional foreground prop sweeps across it so parts
get partly or fully occluded. Every frame yields

* ``labels``: part id per pixel, painted in z order (0 = background),
* ``flat`` / ``color``: flat base colours and the same with two-tone cel shading,
* ``lineart``: anti-aliased black lines along the label borders only (shading borders and
  the background's tone split are not drawn), 1-4 px wide with a few deliberate 1-2 px gaps.

Everything is derived from ``numpy.random.Generator`` streams spawned from one seed, so the
same seed gives bit-identical arrays. Geometry scales with ``min(H, W)`` so 128, 256 and 512
frames look alike; line widths grow only with the square root of the size so that they stay
inside 1-4 px.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from skimage.color import rgb2lab

from .metrics import non_line_mask

__all__ = [
    "SynthFrame",
    "SynthShot",
    "draw_hint_strokes",
    "make_dataset",
    "make_frame",
    "make_shot",
    "palette",
    "write_shot",
]

# fillPoly fractional bits: sub-pixel vertices keep slow motion smooth instead of snapping to the grid
_SHIFT = 4
_ONE = 1 << _SHIFT
# Lines are rasterised at 2x and area-averaged down: cheap, clean anti-aliasing
_SS = 2
# Line widths in px at 256; narrower than 1.25 px would leave no pixel darker than 128 on a
# line that straddles a pixel boundary, which makes lines invisible to threshold-based tools
_MIN_WIDTH = 1.25
_MAX_WIDTH = 4.0
# Separation between flat colours; a little above 20 so rounding never brings a pair under it
_MIN_DELTA_E = 21.0


@dataclass
class SynthFrame:
    lineart: np.ndarray  # HxW uint8, 255 = paper white, 0 = black line (anti-aliased)
    color: np.ndarray  # HxWx3 uint8 RGB ground truth: flat colours with cel shading, lines not drawn in
    flat: np.ndarray  # HxWx3 uint8 RGB: each part's flat base colour, no shading
    labels: np.ndarray  # HxW int32: part id per pixel (0 = background, 1..K parts); defined under lines
    part_colors: dict[int, tuple[int, int, int]]  # part id -> flat base RGB (same across a shot)


@dataclass
class SynthShot:
    frames: list[SynthFrame]
    hints: dict[int, np.ndarray]  # keyframe index -> HxWx4 uint8 RGBA strokes (strokes opaque, rest alpha 0)
    seed: int
    part_names: dict[int, str] = field(default_factory=dict)  # part id -> name, for debugging and docs


# --------------------------------------------------------------------------------------------
# colours


def palette(rng: np.random.Generator, n: int, min_delta_e: float = _MIN_DELTA_E) -> np.ndarray:
    """``n`` anime-like RGB colours (n x 3 uint8), pairwise at least ``min_delta_e`` apart (CIE76).

    Half the candidates are saturated, half pastel; very dark colours are avoided so that
    shadows never approach the black of the line art.
    """
    chosen: list[int] = []
    rgb = np.zeros((0, 3), np.uint8)
    lab = np.zeros((0, 3))
    # A few rounds at most: the sRGB gamut holds far more than 20 colours 21 dE apart
    for _ in range(8):
        m = 256
        h = rng.random(m)
        pastel = rng.random(m) < 0.5
        s = np.where(pastel, rng.uniform(0.18, 0.45, m), rng.uniform(0.5, 0.9, m))
        v = np.where(pastel, rng.uniform(0.85, 1.0, m), rng.uniform(0.6, 0.95, m))
        # float HSV in OpenCV: H in degrees, S and V in [0, 1]
        hsv = np.stack([h * 360.0, s, v], -1).astype(np.float32)[None]
        cand = np.round(255.0 * np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0], 0, 1)).astype(np.uint8)
        # Lab of the rounded uint8 values, so the guarantee holds for what we actually store
        cand_lab = rgb2lab(cand[None].astype(np.float64) / 255.0)[0]
        for i in range(m):
            if cand_lab[i, 0] < 40.0:
                continue
            if lab.shape[0] and np.min(np.linalg.norm(lab - cand_lab[i], axis=1)) < min_delta_e:
                continue
            rgb = np.vstack([rgb, cand[i]])
            lab = np.vstack([lab, cand_lab[i]])
            chosen.append(i)
            if len(chosen) == n:
                return rgb
    raise RuntimeError(f"could not find {n} colours {min_delta_e} dE apart")


def _shade_colors(base: np.ndarray) -> np.ndarray:
    """(K, 3) base colours -> (K, 3, 3) lookup [part, tone] with tone 0 flat, 1 shadow, 2 highlight."""
    b = base.astype(np.float64)
    # Cel shadows are darker and slightly cooler (blue-violet), as painted in most anime
    shadow = b * np.array([0.74, 0.72, 0.84]) + np.array([0.0, 0.0, 8.0])
    highlight = b + (255.0 - b) * 0.45
    lut = np.stack([b, shadow, highlight], 1)
    return np.clip(np.round(lut), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# geometry helpers (all points are (N, 2) float arrays of x, y)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 48, a0: float = 0.0,
             a1: float = 2 * math.pi) -> np.ndarray:
    a = np.linspace(a0, a1, n, endpoint=False)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1)


def _capsule(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, n: int = 10) -> np.ndarray:
    d = p1 - p0
    ang = math.atan2(d[1], d[0])
    a1 = ang + np.linspace(-math.pi / 2, math.pi / 2, n)
    a0 = ang + np.linspace(math.pi / 2, 3 * math.pi / 2, n)
    return np.concatenate([
        p1 + r1 * np.stack([np.cos(a1), np.sin(a1)], 1),
        p0 + r0 * np.stack([np.cos(a0), np.sin(a0)], 1),
    ])


def _chaikin(pts: np.ndarray, iters: int = 3) -> np.ndarray:
    """Corner cutting: turns a coarse closed polygon into a rounded one."""
    for _ in range(iters):
        nxt = np.roll(pts, -1, 0)
        pts = np.stack([0.75 * pts + 0.25 * nxt, 0.25 * pts + 0.75 * nxt], 1).reshape(-1, 2)
    return pts


def _rot(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s], [s, c]])


def _rotate_about(pts: np.ndarray, pivot: np.ndarray, a: float) -> np.ndarray:
    return (pts - pivot) @ _rot(a).T + pivot


def _dir(a: float, side: float) -> np.ndarray:
    """Unit vector hanging down at angle ``a`` (radians), positive = away from the body on ``side``."""
    return np.array([side * math.sin(a), math.cos(a)])


# --------------------------------------------------------------------------------------------
# scene


@dataclass
class _Op:
    """One draw call in z order. Several ops may share a part id (both arms, back hair and fringe)."""

    pid: int
    polys: list[np.ndarray]  # frame pixel coordinates at 1x
    parent: int | None = None  # index of the op this one is clipped to (clothing on a body part)
    shade_k: float = 0.0  # shadow offset in px; 0 = flat, no cel shading
    highlight: bool = False


class _Scene:
    """A character (and optional prop) with all its random design and motion choices fixed."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int], occlusion: bool) -> None:
        self.h, self.w = int(size[0]), int(size[1])
        if self.h < 16 or self.w < 16:
            raise ValueError(f"frame size {size} is too small; use at least 16x16")
        self.unit = float(min(self.h, self.w))
        self.names: dict[int, str] = {}
        r = rng

        def new(name: str) -> int:
            pid = len(self.names) + 1
            self.names[pid] = name
            return pid

        # --- design, in character units (about 1 tall, y down, origin at the hips)
        self.hr = r.uniform(0.105, 0.135)
        self.head_rx = self.hr * r.uniform(0.88, 1.0)
        self.sw = r.uniform(0.17, 0.24)
        self.hipw = r.uniform(0.15, 0.21)
        self.sh_y = -0.28
        self.hip_y = 0.05
        self.facing = 1.0 if r.random() < 0.5 else -1.0
        self.arm_r = r.uniform(0.028, 0.036)
        self.arm_len = (r.uniform(0.14, 0.17), r.uniform(0.13, 0.16))
        self.leg_r = r.uniform(0.042, 0.052)
        self.leg_len = (r.uniform(0.19, 0.22), r.uniform(0.19, 0.22))
        self.hair_long = r.uniform(0.0, 0.28)
        self.hair_spikes = int(r.integers(4, 8))
        self.fringe_spikes = int(r.integers(3, 6))
        self.fringe_tips = r.uniform(-0.05, 0.2, 16)
        self.fringe_jit = r.uniform(-0.3, 0.3, 16)
        self.eye_rx = self.hr * r.uniform(0.16, 0.2)
        self.eye_ry = self.hr * r.uniform(0.25, 0.3)
        self.torso_jit = r.uniform(-0.012, 0.012, (7, 2))

        self.torso = new("torso")
        band_kinds = list(r.choice(["belt", "collar", "stripe"], size=int(r.integers(1, 3)), replace=False))
        self.bands = [(str(k), new(str(k)), r.uniform(-0.15, 0.15)) for k in band_kinds]
        self.arms = new("arms")
        self.sleeves = new("sleeves") if r.random() < 0.6 else None
        self.legs = new("legs")
        self.dress = r.random() < 0.45
        self.skirt = new("skirt") if self.dress else None
        self.skirt_flare = r.uniform(0.04, 0.1)
        self.skirt_len = r.uniform(0.13, 0.22)
        self.pants = new("pants") if (not self.dress and r.random() < 0.7) else None
        self.shoes = new("shoes") if r.random() < 0.7 else None
        self.face = new("face")
        self.eyes = new("eyes")
        self.hair = new("hair")
        self.prop = new("prop") if occlusion else None

        # --- motion over normalised shot time t in [0, 1]
        self.c0 = np.array([self.w / 2 + r.uniform(-0.12, 0.12) * self.unit,
                            self.h / 2 + r.uniform(-0.05, 0.06) * self.unit])
        speed = r.uniform(0.07, 0.2) * self.unit
        heading = r.uniform(0, 2 * math.pi)
        self.vel = speed * np.array([math.cos(heading), 0.5 * math.sin(heading)])
        self.th0, self.th1 = r.uniform(-0.08, 0.08), r.uniform(-0.12, 0.12)
        self.sc0, self.zoom = r.uniform(0.78, 1.02), r.uniform(-0.12, 0.12)
        self.cycles = r.uniform(0.5, 1.25)  # limb swing cycles per shot
        self.phase = r.uniform(0, 2 * math.pi)
        self.arm_base = r.uniform(0.12, 0.45, 2)
        self.arm_amp = r.uniform(0.25, 0.6, 2)
        self.elbow = r.uniform(0.1, 0.7, 2)
        self.leg_base = r.uniform(0.02, 0.15, 2)
        self.leg_amp = r.uniform(0.1, 0.3)
        self.head_tilt = r.uniform(-0.12, 0.12), r.uniform(0.0, 0.1)

        # Light comes from one world direction for the whole shot, mostly from above
        la = r.uniform(-math.pi * 0.85, -math.pi * 0.15)
        self.light = np.array([math.cos(la), math.sin(la)])

        # Foreground prop crossing the character around t_c, so occlusion is guaranteed mid-shot
        if self.prop is not None:
            self.prop_kind = str(r.choice(["pillar", "bush", "sign"]))
            self.prop_tc = r.uniform(0.3, 0.7)
            self.prop_v = r.choice([-1.0, 1.0]) * r.uniform(0.5, 1.0) * self.unit
            self.prop_w = r.uniform(0.1, 0.2) * self.unit
            self.prop_y = r.uniform(0.2, 0.75) * self.h
            self.prop_bumps = r.uniform(0.75, 1.0, 12)

        # --- colours: one flat colour per part id (0 = background) for the whole shot
        n_ids = len(self.names) + 1
        self.base = palette(r, n_ids)
        self.lut = _shade_colors(self.base)
        # Background: flat, or two tones split by a straight edge that is not a drawn line
        self.bg_tone: np.ndarray | None = None
        if r.random() < 0.6:
            yy = np.arange(self.h, dtype=np.float32)[:, None]
            xx = np.arange(self.w, dtype=np.float32)[None, :]
            a = r.uniform(-0.4, 0.4)
            y0 = r.uniform(0.45, 0.85) * self.h
            self.bg_tone = (yy - y0 - math.tan(a) * (xx - self.w / 2)) > 0
            self.bg_tone_val = 1 if r.random() < 0.6 else 2
        self.part_colors = {i: (int(c[0]), int(c[1]), int(c[2])) for i, c in enumerate(self.base)}

    # ---- pose

    def _to_frame(self, t: float) -> tuple[np.ndarray, float, np.ndarray]:
        """Affine (2x2 matrix, uniform scale, translation) from character units to frame px."""
        th = self.th0 + self.th1 * t
        sc = self.sc0 * (1.0 + self.zoom * t) * self.unit
        centre = np.array([0.0, -0.02])
        m = _rot(th) * sc
        tr = self.c0 + self.vel * (t - 0.5) - m @ centre
        return m, sc, tr

    def ops(self, t: float) -> list[_Op]:
        m, sc, tr = self._to_frame(t)

        def fr(p: np.ndarray) -> np.ndarray:
            return p @ m.T + tr

        w = 2 * math.pi * self.cycles * t + self.phase
        ops: list[_Op] = []

        def add(pid: int, polys: list[np.ndarray], parent: int | None = None, k: float = 0.0,
                hl: bool = False) -> int:
            ops.append(_Op(pid, [fr(p) for p in polys], parent, k * sc, hl))
            return len(ops) - 1

        hr, f = self.hr, self.facing
        neck = np.array([0.0, self.sh_y])
        tilt = self.head_tilt[0] + self.head_tilt[1] * math.sin(w * 2)
        hc = np.array([0.0, self.sh_y - hr * 0.85])

        def head_space(p: np.ndarray) -> np.ndarray:
            return _rotate_about(p, neck, tilt)

        # back hair: a big blob behind the head with spiky ends
        hx, hy = hr * 1.22, hr * 1.12 + self.hair_long * 0.5
        back = self._spiky(hc[0], hc[1] + self.hair_long * 0.5, hx, hy, self.hair_spikes, 0.22)
        add(self.hair, [head_space(back)], k=0.05, hl=True)

        # arms: the one on the far side goes behind the torso, the near one in front
        arm_polys = []
        for j, side in enumerate((-f, f)):
            sh = np.array([side * (self.sw / 2 - self.arm_r * 0.6), self.sh_y + self.arm_r])
            a = self.arm_base[j] + self.arm_amp[j] * math.sin(w + math.pi * j)
            el = sh + self.arm_len[0] * _dir(a, side)
            wr = el + self.arm_len[1] * _dir(a - self.elbow[j] * (0.6 + 0.4 * math.sin(w + j)), side)
            upper = _capsule(sh, el, self.arm_r, self.arm_r * 0.9)
            fore = _capsule(el, wr, self.arm_r * 0.9, self.arm_r * 0.75)
            sleeve = _capsule(sh, sh + 0.62 * (el - sh), self.arm_r * 1.5, self.arm_r * 1.5)
            arm_polys.append((upper, fore, sleeve))

        def arm(j: int) -> None:
            upper, fore, sleeve = arm_polys[j]
            i = add(self.arms, [upper, fore], k=0.022)
            if self.sleeves is not None:
                add(self.sleeves, [sleeve], parent=i)

        arm(0)

        # legs, trousers and shoes
        for j, side in enumerate((-1.0, 1.0)):
            hip = np.array([side * self.hipw * 0.28, self.hip_y - 0.03])
            a = self.leg_base[j] + self.leg_amp * math.sin(w + math.pi * j)
            kn = hip + self.leg_len[0] * _dir(a, side)
            ank = kn + self.leg_len[1] * _dir(0.4 * a, side)  # shins hang straighter than thighs
            i = add(self.legs, [_capsule(hip, kn, self.leg_r, self.leg_r * 0.85),
                                _capsule(kn, ank, self.leg_r * 0.85, self.leg_r * 0.7)], k=0.03)
            if self.pants is not None:
                add(self.pants, [_capsule(hip, hip + 0.7 * (kn - hip), self.leg_r * 1.5, self.leg_r * 1.5)],
                    parent=i)
            if self.shoes is not None:
                toe = ank + np.array([f * self.leg_r * 0.7, self.leg_r * 0.35])
                add(self.shoes, [_ellipse(toe[0], toe[1], self.leg_r * 1.35, self.leg_r * 0.8, 24)], k=0.015)

        # torso: rounded trapezoid, with clothing bands clipped to it
        sw, hw = self.sw / 2, self.hipw / 2
        quad = np.array([[-sw, self.sh_y], [0.0, self.sh_y - 0.015], [sw, self.sh_y],
                         [hw * 1.05, self.hip_y - 0.08], [hw, self.hip_y + 0.02], [-hw, self.hip_y + 0.02],
                         [-hw * 1.05, self.hip_y - 0.08]]) + self.torso_jit
        ti = add(self.torso, [_chaikin(quad, 3)], k=0.05)
        for kind, pid, tilt_b in self.bands:
            big = 0.4
            if kind == "belt":
                y0, y1 = self.hip_y - 0.065, self.hip_y - 0.02
            elif kind == "stripe":
                y0, y1 = self.sh_y + 0.09, self.sh_y + 0.14
            else:  # collar: the whole shoulder line, like a sailor collar or a jacket top
                y0, y1 = self.sh_y - 0.1, self.sh_y + 0.055
            band = np.array([[-big, y0 - tilt_b * big], [big, y0 + tilt_b * big],
                             [big, y1 + tilt_b * big], [-big, y1 - tilt_b * big]])
            add(pid, [band], parent=ti)

        if self.skirt is not None:
            y0, y1 = self.hip_y - 0.04, self.hip_y + self.skirt_len
            fl = self.skirt_flare
            sk = np.array([[-hw * 1.02, y0], [hw * 1.02, y0], [hw + fl, y1], [0.0, y1 + 0.02],
                           [-hw - fl, y1]])
            add(self.skirt, [_chaikin(sk, 2)], k=0.05)

        # head, eyes (clipped to the face) and fringe, all tilting together about the neck
        face = _ellipse(hc[0], hc[1], self.head_rx, hr, 48)
        fi = add(self.face, [head_space(face)], k=0.045)
        ex, ey = hr * 0.38, hc[1] + hr * 0.25
        cx = hc[0] + f * hr * 0.14
        eyes = [_ellipse(cx + d, ey, self.eye_rx, self.eye_ry, 20) for d in (-ex, ex)]
        add(self.eyes, [head_space(e) for e in eyes], parent=fi)
        add(self.hair, [head_space(self._fringe(hc))], k=0.035, hl=True)

        arm(1)

        # the prop lives in frame coordinates: it does not move with the character
        if self.prop is not None:
            cx = (self.c0[0] + self.vel[0] * (self.prop_tc - 0.5)) + self.prop_v * (t - self.prop_tc)
            pw = self.prop_w
            if self.prop_kind == "pillar":
                poly = np.array([[cx - pw / 2, -0.1 * self.h], [cx + pw / 2, -0.1 * self.h],
                                 [cx + pw / 2, 1.1 * self.h], [cx - pw / 2, 1.1 * self.h]])
            elif self.prop_kind == "bush":
                n = len(self.prop_bumps)
                a = np.linspace(math.pi, 2 * math.pi, n * 4)
                rr = np.repeat(self.prop_bumps, 4) * (1 - 0.08 * np.abs(np.sin(a * n)))
                top = np.stack([cx + pw * 1.6 * np.cos(a) * rr, self.h * 0.98 + pw * 1.8 * np.sin(a) * rr], 1)
                poly = np.vstack([top, [[cx + pw * 1.6, self.h * 1.2], [cx - pw * 1.6, self.h * 1.2]]])
            else:
                y0, y1 = self.prop_y - pw * 0.7, self.prop_y + pw * 0.7
                poly = _chaikin(np.array([[cx - pw, y0], [cx + pw, y0], [cx + pw, y1], [cx - pw, y1]]), 2)
            ops.append(_Op(self.prop, [poly], None, 0.18 * pw, False))
        return ops

    def _spiky(self, cx: float, cy: float, rx: float, ry: float, spikes: int, depth: float) -> np.ndarray:
        """Ellipse whose lower half ends in ``spikes`` pointed locks (hair seen from the front)."""
        top = _ellipse(cx, cy, rx, ry, 32, math.pi, 2 * math.pi)
        a = np.linspace(0.0, math.pi, 2 * spikes + 1)
        rad = np.where(np.arange(2 * spikes + 1) % 2 == 0, 1.0 - depth, 1.0)
        rad[0] = rad[-1] = 1.0
        bottom = np.stack([cx + rx * rad * np.cos(a), cy + ry * rad * np.sin(a)], 1)
        return np.vstack([bottom[:-1], top])

    def _fringe(self, hc: np.ndarray) -> np.ndarray:
        """Front hair: an arc over the skull, side locks, and a zig-zag of locks over the forehead."""
        hr, rx = self.hr, self.head_rx * 1.1
        # left -> over the top -> right
        top = _ellipse(hc[0], hc[1] - hr * 0.02, rx, hr * 1.1, 32, math.pi, 2 * math.pi)
        n = self.fringe_spikes
        xs = np.linspace(1.0, -1.0, 2 * n + 1)
        pts = [[hc[0] + rx * 1.0, hc[1]], [hc[0] + rx * 0.98, hc[1] + hr * 0.55]]  # right side lock
        for i, x in enumerate(xs[1:-1]):
            tip = i % 2 == 0
            dy = (self.fringe_tips[i % 16] if tip else -0.38) * hr
            pts.append([hc[0] + (x * 0.85 + self.fringe_jit[i % 16] * 0.05) * rx, hc[1] + dy])
        pts += [[hc[0] - rx * 0.98, hc[1] + hr * 0.55], [hc[0] - rx * 1.0, hc[1]]]  # left side lock
        return np.vstack([top, np.array(pts)])

    # ---- rendering

    def render(self, t: float, rng: np.random.Generator, gaps: bool) -> SynthFrame:
        ops = self.ops(t)
        labels, shade = _raster(ops, self.h, self.w, 1, self.light)
        if self.bg_tone is not None:
            shade[(labels == 0) & self.bg_tone] = self.bg_tone_val
        labels_ss, _ = _raster(ops, self.h, self.w, _SS, self.light)
        lineart = _line_art(labels_ss, self.h, self.w, rng, math.sqrt(self.unit / 256.0), gaps)
        return SynthFrame(
            lineart=lineart,
            # np.take on a flat table is ~10x faster than 2-D fancy indexing
            color=np.take(self.lut.reshape(-1, 3), labels * 3 + shade, axis=0),
            flat=np.take(self.base, labels, axis=0),
            labels=labels,
            part_colors=dict(self.part_colors),
        )


# --------------------------------------------------------------------------------------------
# rasterisation


def _box(polys: list[np.ndarray], f: int, h: int, w: int) -> tuple[int, int, int, int] | None:
    pts = np.vstack(polys) * f + (f - 1) / 2
    x0, y0 = np.floor(pts.min(0)).astype(int) - 1
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x0 >= x1 or y0 >= y1:
        return None
    return int(y0), int(y1), int(x0), int(x1)


def _fill(polys: list[np.ndarray], box: tuple[int, int, int, int], f: int,
          offset: np.ndarray | None = None) -> np.ndarray:
    y0, y1, x0, x1 = box
    buf = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for p in polys:  # one call per polygon: overlapping polygons of a part must union, not cancel
        q = p if offset is None else p + offset
        # pixel centres at 1x map to the middle of their f x f block
        q = np.round((q * f + (f - 1) / 2 - (x0, y0)) * _ONE).astype(np.int32)
        cv2.fillPoly(buf, [q], 1, cv2.LINE_8, _SHIFT)
    return buf.view(bool)


def _raster(ops: list[_Op], h: int, w: int, f: int, light: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paint ops in z order. Returns labels (h*f, w*f) int32 and, at f == 1, tones (0 flat, 1 shadow,
    2 highlight) of the op that won each pixel."""
    H, W = h * f, w * f
    labels = np.zeros((H, W), np.int32)
    shade = np.zeros((H, W) if f == 1 else (0, 0), np.uint8)  # tones are only needed at 1x
    done: dict[int, tuple[tuple[int, int, int, int], np.ndarray, np.ndarray | None]] = {}
    for i, op in enumerate(ops):
        if op.parent is not None:
            if op.parent not in done:
                continue
            box, pmask, ptone = done[op.parent]
            m = _fill(op.polys, box, f) & pmask & (labels[box[0]:box[1], box[2]:box[3]] == ops[op.parent].pid)
            tone = ptone  # clothing follows the shading of the body part it sits on
        else:
            b = _box(op.polys, f, H, W)
            if b is None:
                continue
            box = b
            m = _fill(op.polys, box, f)
            tone = None
            if f == 1 and op.shade_k > 0:
                v = light * op.shade_k
                shadow = m & ~_fill(op.polys, box, f, v)
                tone = shadow.astype(np.uint8)
                if op.highlight:
                    tone[m & ~_fill(op.polys, box, f, -0.4 * v) & ~shadow] = 2
        y0, y1, x0, x1 = box
        labels[y0:y1, x0:x1][m] = op.pid
        if f == 1:
            shade[y0:y1, x0:x1][m] = 0 if tone is None else tone[m]
        done[i] = (box, m, tone)
    return labels, shade


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int = 5) -> np.ndarray:
    g = rng.random((cells, cells)).astype(np.float32)
    # cubic on a coarse grid, then linear to full size: smooth enough and far cheaper than full-size cubic
    mid = cv2.resize(g, (max(w // 8, cells), max(h // 8, cells)), interpolation=cv2.INTER_CUBIC)
    return np.clip(cv2.resize(mid, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def _line_art(labels_ss: np.ndarray, h: int, w: int, rng: np.random.Generator, wscale: float,
              gaps: bool) -> np.ndarray:
    """Anti-aliased black lines along the borders of a supersampled label map.

    Silhouette lines (against the background) are drawn thicker than interior lines, and both
    widths wander smoothly along the strokes like an inked drawing.
    """
    lab = labels_ss
    H, W = lab.shape
    outer = np.zeros((H, W), bool)
    inner = np.zeros((H, W), bool)
    for axis in (0, 1):
        a = lab[:-1, :] if axis == 0 else lab[:, :-1]
        b = lab[1:, :] if axis == 0 else lab[:, 1:]
        diff = a != b
        o = diff & ((a == 0) | (b == 0))
        i = diff & ~o
        # mark both pixels of each differing pair, so the border straddles the true edge symmetrically
        for mask, part in ((outer, o), (inner, i)):
            if axis == 0:
                mask[:-1, :] |= part
                mask[1:, :] |= part
            else:
                mask[:, :-1] |= part
                mask[:, 1:] |= part
    f = H // h
    # Half-width in supersampled px equals the 1x width: the two-pixel border strip is already 1 px
    w_out = np.clip((2.2 + 1.0 * _smooth_noise(rng, H, W)) * wscale, _MIN_WIDTH, _MAX_WIDTH) * (f / 2)
    w_in = np.clip((1.3 + 0.8 * _smooth_noise(rng, H, W)) * wscale, _MIN_WIDTH, _MAX_WIDTH) * (f / 2)
    cov = np.zeros((H, W), np.float32)
    for mask, half in ((outer, w_out), (inner, w_in)):
        if mask.any():
            # the 5x5 mask is within ~2% of exact at the few px that matter here, and much faster
            d = cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
            np.subtract(half, d, out=d)
            np.maximum(cov, np.clip(d, 0.0, 1.0, out=d), out=cov)
    if gaps:
        _cut_gaps(cov, lab, outer | inner, rng, int(rng.integers(1, 4)), f)
    small = cv2.resize(cov, (w, h), interpolation=cv2.INTER_AREA)
    return np.round(255.0 * (1.0 - np.clip(small, 0.0, 1.0))).astype(np.uint8)


def _cut_gaps(cov: np.ndarray, lab: np.ndarray, border: np.ndarray, rng: np.random.Generator, count: int,
              f: int) -> None:
    """Erase ``count`` 1-2 px (at 1x) pieces of line, across the full line width, in place."""
    H, W = lab.shape
    r = 4 * f
    ys, xs = np.nonzero(border[r:H - r, r:W - r])
    if ys.size == 0:
        return
    made = 0
    for idx in rng.permutation(ys.size)[: count * 20]:
        y, x = int(ys[idx]) + r, int(xs[idx]) + r
        patch = lab[y - r:y + r + 1, x - r:x + r + 1]
        # only plain two-region stretches: a gap at a junction would open three regions at once
        if np.unique(patch).size != 2:
            continue
        py, px = np.nonzero(patch == lab[y, x])
        nrm = np.array([px.mean() - r, py.mean() - r])
        nn = float(np.hypot(*nrm))
        if nn < 1e-3:
            continue
        nrm /= nn
        tan = np.array([-nrm[1], nrm[0]])
        half_len = rng.uniform(1.0, 2.0) * f / 2
        half_wid = _MAX_WIDTH * f / 2 + 2
        c = np.array([x, y], float)
        quad = np.array([c - tan * half_len - nrm * half_wid, c + tan * half_len - nrm * half_wid,
                         c + tan * half_len + nrm * half_wid, c - tan * half_len + nrm * half_wid])
        cv2.fillConvexPoly(cov, np.round(quad * _ONE).astype(np.int32), 0.0, cv2.LINE_8, _SHIFT)
        made += 1
        if made == count:
            return


# --------------------------------------------------------------------------------------------
# hints


def draw_hint_strokes(frame: SynthFrame, rng: np.random.Generator, parts: Sequence[int] | None = None,
                      strokes_per_part: int = 1, every_shape: bool = False) -> np.ndarray:
    """Short smooth strokes of each part's flat colour, like a colourist's hint layer.

    Returns HxWx4 uint8 RGBA: stroke pixels opaque (alpha 255) in the part's flat colour, the rest
    alpha 0. Strokes are 2-5 px wide and kept well inside their part (away from the lines), so each
    stroke pixel lies in the part whose colour it carries. ``parts`` defaults to every id present in
    ``frame.labels`` (background included); parts with no room for a stroke are skipped.

    ``every_shape``: as an artist colouring a keyframe, also stroke each drawn shape of a part that got no
    stroke: two shoes that touch are one piece of the part's labels but two shapes between the lines, and
    a flat fill leaves the unstroked one bare. These strokes come from a stream spawned off ``rng`` (numpy's
    ``Generator.spawn``), so every other stroke is the same with or without them.
    """
    labels = frame.labels
    h, w = labels.shape
    out = np.zeros((h, w, 4), np.uint8)
    s = min(h, w) / 256.0
    # distance from each pixel to the nearest label border: "well inside" = far from any line
    border = np.zeros((h, w), bool)
    dh = labels[:, 1:] != labels[:, :-1]
    dv = labels[1:, :] != labels[:-1, :]
    border[:, 1:] |= dh
    border[:, :-1] |= dh
    border[1:, :] |= dv
    border[:-1, :] |= dv
    dist = cv2.distanceTransform((~border).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    ids = sorted(int(i) for i in np.unique(labels)) if parts is None else [int(p) for p in parts]
    # keep clear of the widest line this frame size gets (see _line_art), plus its anti-aliasing
    clear = min(_MAX_WIDTH, 3.2 * math.sqrt(s)) / 2 + 0.75
    def stroke(pid: int, part: np.ndarray, rng: np.random.Generator) -> None:
        keep = part & (dist > clear)
        width = int(rng.integers(2, 6))
        inside = keep & (dist > clear + width / 2 + 0.5)
        if not inside.any():
            # small parts (eyes at 128 px) get the thinnest stroke rather than none
            width = 2
            inside = keep & (dist > clear + 0.5)
        ys, xs = np.nonzero(inside)
        if ys.size == 0:
            return
        length = float(np.clip(0.6 * math.sqrt(ys.size), 6 * s, 40 * s))
        for _ in range(strokes_per_part):
            pts = _stroke_path(inside, ys, xs, rng, length, step=max(1.0, 1.5 * s))
            if pts is None:
                continue
            buf = np.zeros((h, w), np.uint8)
            path = np.round(pts * _ONE).astype(np.int32)
            cv2.polylines(buf, [path], False, 255, width, cv2.LINE_AA, _SHIFT)
            m = (buf >= 128) & keep
            out[m, :3] = frame.part_colors[pid]
            out[m, 3] = 255

    pieces = list(_part_pieces(labels, ids, frame.part_colors))
    for pid, part in pieces:
        stroke(pid, part, rng)
    if every_shape:
        shape_rng = rng.spawn(1)[0]
        for pid, shape in _drawn_shapes(frame.lineart, pieces):
            if not out[shape, 3].any():
                stroke(pid, shape, shape_rng)
    return out


def _min_piece_area(labels: np.ndarray) -> int:
    return max(16, labels.size // 4000)


def _part_pieces(labels: np.ndarray, ids: Sequence[int], part_colors: dict) -> Iterator[tuple[int, np.ndarray]]:
    """Each separate piece of each part (a background split by a pillar is two pieces, each painted)."""
    min_area = _min_piece_area(labels)
    for pid in ids:
        if pid not in part_colors:
            continue
        count, pieces = cv2.connectedComponents((labels == pid).astype(np.uint8), connectivity=4)
        for piece in range(1, count):
            mask = pieces == piece
            if piece == 1 or mask.sum() >= min_area:
                yield pid, mask


def _drawn_shapes(lineart: np.ndarray, pieces: Sequence[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray]]:
    """Each shape drawn inside each piece: its paper between the lines, with the lines grown 2 px so a 1-2 px gap
    (see _cut_gaps) does not join two shapes. Shapes under the pieces' minimum area are left out."""
    paper = non_line_mask(lineart, grow=2)
    min_area = _min_piece_area(lineart)
    for pid, piece in pieces:
        count, shapes, stats, _ = cv2.connectedComponentsWithStats((piece & paper).astype(np.uint8), connectivity=4)
        for shape in np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= min_area) + 1:
            yield pid, shapes == shape


def _stroke_path(inside: np.ndarray, ys: np.ndarray, xs: np.ndarray, rng: np.random.Generator,
                 length: float, step: float) -> np.ndarray | None:
    """A gently curving path that starts at a random interior pixel and stops before leaving it."""
    best: np.ndarray | None = None
    h, w = inside.shape
    for _ in range(6):
        i = int(rng.integers(ys.size))
        p = np.array([xs[i], ys[i]], float)
        a = rng.uniform(0, 2 * math.pi)
        turn = rng.normal(0.0, 0.06)
        pts = [p.copy()]
        for _ in range(int(length / step)):
            a += turn + rng.normal(0.0, 0.05)
            q = p + step * np.array([math.cos(a), math.sin(a)])
            xi, yi = int(round(q[0])), int(round(q[1]))
            if not (0 <= xi < w and 0 <= yi < h and inside[yi, xi]):
                break
            p = q
            pts.append(p.copy())
        path = np.array(pts)
        if best is None or len(path) > len(best):
            best = path
        if len(path) * step >= 0.6 * length:
            break
    return best


# --------------------------------------------------------------------------------------------
# public entry points


def _streams(seed: int, n: int) -> list[np.random.Generator]:
    # independent streams: changing how many frames or hints we draw never changes the character
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(n)]


def make_frame(seed: int, size: tuple[int, int] = (256, 256)) -> SynthFrame:
    """One frame of a random character in a random pose (with a prop and line gaps), size = (H, W)."""
    scene_rng, time_rng, line_rng = _streams(seed, 3)
    scene = _Scene(scene_rng, size, occlusion=True)
    return scene.render(float(time_rng.random()), line_rng, gaps=True)


def make_shot(seed: int, n_frames: int = 12, size: tuple[int, int] = (256, 256),
              keyframes: Sequence[int] = (0, -1), occlusion: bool = True, gaps: bool = True) -> SynthShot:
    """A shot of ``n_frames`` frames of one character moving smoothly, with hints on ``keyframes``.

    The motion covers the same path whatever ``n_frames`` is (more frames = finer steps).
    ``keyframes`` may be negative (Python indexing); duplicates collapse. ``occlusion`` adds a
    foreground prop that sweeps across the character mid-shot (limbs still overlap the body
    without it). ``gaps`` opens a few 1-2 px gaps in the lines of each frame.
    """
    if n_frames < 1:
        raise ValueError("n_frames must be at least 1")
    scene_rng, hint_rng, *line_rngs = _streams(seed, 2 + n_frames)
    scene = _Scene(scene_rng, size, occlusion)
    times = [0.5] if n_frames == 1 else [i / (n_frames - 1) for i in range(n_frames)]
    frames = [scene.render(t, line_rngs[i], gaps) for i, t in enumerate(times)]
    keys = []
    for k in keyframes:
        if not -n_frames <= k < n_frames:
            raise ValueError(f"keyframe {k} is outside a shot of {n_frames} frames")
        keys.append(k % n_frames)
    hints = {k: draw_hint_strokes(frames[k], hint_rng, every_shape=True) for k in sorted(set(keys))}
    return SynthShot(frames=frames, hints=hints, seed=int(seed), part_names={0: "background", **scene.names})


def _imwrite(path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")


def write_shot(shot: SynthShot, folder: Path, prefix: str = "shot", start: int = 1) -> None:
    """Write a shot as PNG sequences under ``folder``.

    ``lineart/`` greyscale, ``color/`` and ``flat/`` RGB, ``labels/`` 16-bit part ids, ``hints/``
    RGBA (keyframes only), each named ``{prefix}.{n:04d}.png`` with n = start + frame index, plus
    ``{prefix}.json`` holding the seed, the part colours and names, and the keyframe indices.
    """
    folder = Path(folder)
    subs = ["lineart", "color", "flat", "labels"] + (["hints"] if shot.hints else [])
    for sub in subs:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i, fr in enumerate(shot.frames):
        name = f"{prefix}.{start + i:04d}.png"
        _imwrite(folder / "lineart" / name, fr.lineart)
        _imwrite(folder / "color" / name, cv2.cvtColor(fr.color, cv2.COLOR_RGB2BGR))
        _imwrite(folder / "flat" / name, cv2.cvtColor(fr.flat, cv2.COLOR_RGB2BGR))
        _imwrite(folder / "labels" / name, fr.labels.astype(np.uint16))
        if i in shot.hints:
            _imwrite(folder / "hints" / name, cv2.cvtColor(shot.hints[i], cv2.COLOR_RGBA2BGRA))
    colors = shot.frames[0].part_colors if shot.frames else {}
    meta = {
        "seed": shot.seed,
        "frames": len(shot.frames),
        "start": start,
        "keyframes": sorted(shot.hints),
        "part_colors": {str(k): list(v) for k, v in colors.items()},
        "part_names": {str(k): v for k, v in shot.part_names.items()},
    }
    (folder / f"{prefix}.json").write_text(json.dumps(meta, indent=1))


def make_dataset(folder: Path | str, count: int, seed: int = 0, size: tuple[int, int] = (256, 256),
                 frames: int = 1) -> list[Path]:
    """Write ``count`` shots to ``folder/shot_{i:04d}`` and return those folders.

    Shot i uses a seed derived from (seed, i), so datasets made with neighbouring seeds do not
    share shots.
    """
    folder = Path(folder)
    out = []
    for i in range(count):
        shot_seed = int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0])
        sub = folder / f"shot_{i:04d}"
        write_shot(make_shot(shot_seed, n_frames=frames, size=size), sub)
        out.append(sub)
    return out
