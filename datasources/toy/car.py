"""Parametric 3D toy cars whose triangles carry ADE-Car-12 part labels, with named 3D keypoints.

World axes follow inverse_graphics.camera: y up, the car's front at +x, its width along z (its
right side at +z, since right = forward x up), the car centred on the origin. Every part is a convex solid (the convex hull of a few points), so each
part's triangles are wound counter-clockwise seen from outside, as the renderer expects. Panels
(doors, windows, lights, plates) are thin solids standing a few millimetres proud of the surface
they sit on, so the z-buffer shows them without fighting.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import trimesh

from datasources.classes import CAR_12

KEYPOINT_NAMES = (
    "wheel_front_left", "wheel_front_right", "wheel_rear_left", "wheel_rear_right",
    "head_light_left", "head_light_right", "tail_light_left", "tail_light_right",
    "plate_front", "plate_rear", "mirror_left", "mirror_right",
    "roof_front_left", "roof_front_right", "roof_rear_left", "roof_rear_right",
)
# Keypoints that look alike in an image: which wheel, lamp or roof corner one is follows from the viewpoint only.
KEYPOINT_LOOKALIKES = (
    ("wheel_front_left", "wheel_front_right", "wheel_rear_left", "wheel_rear_right"),
    ("head_light_left", "head_light_right"), ("tail_light_left", "tail_light_right"),
    ("plate_front", "plate_rear"), ("mirror_left", "mirror_right"),
    ("roof_front_left", "roof_front_right", "roof_rear_left", "roof_rear_right"),
)


def swapped_keypoints(a: str, b: str) -> list[int]:
    """Index map over KEYPOINT_NAMES exchanging the words a and b in every name: ("left", "right") gives each
    keypoint's mirror image across the car's z = 0 plane (a keypoint without either word is its own)."""
    other = {a: b, b: a}
    return [KEYPOINT_NAMES.index("_".join(other.get(w, w) for w in name.split("_"))) for name in KEYPOINT_NAMES]


PROUD = 0.01  # how far panels stand off the surface they sit on (metres)
LIGHT_SPAN = (0.45, 0.08)  # lights reach from this far inside the car's side to this far (metres)


@dataclass(frozen=True)
class CarParams:
    """Shape and colour of one toy car (lengths in metres, colours RGB in [0, 1])."""

    length: float
    width: float
    clearance: float       # ground to the bottom of the body
    body_height: float     # bottom of the body to the belt line
    nose: float            # horizontal length of the slanted hood tip (and trunk tip, scaled)
    cabin_length: float    # greenhouse length at the belt line
    cabin_offset: float    # greenhouse centre along x, from the car centre
    cabin_height: float
    windshield_rake: float  # horizontal run of the windshield (and rear window, scaled)
    wheel_radius: float
    wheelbase: float
    body_color: tuple[float, float, float]
    window_color: tuple[float, float, float]
    hub_color: tuple[float, float, float]

    @property
    def height(self) -> float:
        return self.clearance + self.body_height + self.cabin_height

    def to_dict(self) -> dict:
        return asdict(self)


def sample_params(rng: np.random.Generator) -> CarParams:
    """A random car: sedans, hatchbacks and SUVs come out of the same ranges."""
    length = rng.uniform(3.6, 5.0)
    wheel_radius = rng.uniform(0.30, 0.42)
    cabin_length = length * rng.uniform(0.40, 0.60)
    hue = rng.uniform()
    return CarParams(
        length=length,
        width=rng.uniform(1.6, 2.0),
        clearance=rng.uniform(0.12, 0.30),
        body_height=rng.uniform(0.50, 0.75),
        nose=rng.uniform(0.10, 0.35),
        cabin_length=cabin_length,
        cabin_offset=rng.uniform(-0.12, 0.05) * length,
        cabin_height=rng.uniform(0.40, 0.62),
        windshield_rake=rng.uniform(0.25, 0.6),
        wheel_radius=wheel_radius,
        wheelbase=length * rng.uniform(0.56, 0.68),
        body_color=tuple(hsv(hue, rng.uniform(0.0, 0.9), rng.uniform(0.25, 0.95))),
        window_color=tuple(hsv(rng.uniform(0.5, 0.7), rng.uniform(0.1, 0.5), rng.uniform(0.08, 0.3))),
        hub_color=tuple([rng.uniform(0.55, 0.85)] * 3),
    )


def mean_params(samples: int = 1000) -> CarParams:
    """The toy world's mean car: each shape parameter (and colour) averaged over `samples` seeded draws."""
    rng = np.random.default_rng(0)
    draws = [sample_params(rng) for _ in range(samples)]
    mean = {f.name: np.mean([getattr(d, f.name) for d in draws], axis=0) for f in fields(CarParams)}
    return CarParams(**{k: tuple(float(x) for x in v) if np.ndim(v) else float(v) for k, v in mean.items()})


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (all in [0, 1]) as RGB in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


@dataclass(frozen=True)
class CarMesh:
    """verts: float32 (V, 3) world; faces: int64 (F, 3) counter-clockwise from outside;
    face_labels: int64 (F,) ADE-Car-12 indices; face_colors: float32 (F, 3) albedo in [0, 1];
    keypoints: float32 (len(KEYPOINT_NAMES), 3) world positions, on the visible surface."""

    verts: np.ndarray
    faces: np.ndarray
    face_labels: np.ndarray
    face_colors: np.ndarray
    keypoints: np.ndarray


class _Builder:
    """Collects convex parts (points -> hull) with a label and a colour each."""

    def __init__(self):
        self.verts, self.faces, self.labels, self.colors = [], [], [], []
        self.count = 0

    def add(self, points, label: str, color) -> None:
        hull = trimesh.convex.convex_hull(np.asarray(points, np.float64))
        self.verts.append(hull.vertices)
        self.faces.append(hull.faces + self.count)
        self.count += len(hull.vertices)
        self.labels += [CAR_12.index(label)] * len(hull.faces)
        self.colors += [color] * len(hull.faces)

    def box(self, lo, hi, label: str, color) -> None:
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        self.add(corners, label, color)

    def disc(self, center, radius: float, z0: float, z1: float, label: str, color, segments: int = 16) -> None:
        """A cylinder with its axis along z (wheels and hubs)."""
        a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
        ring = np.stack([center[0] + radius * np.cos(a), center[1] + radius * np.sin(a)], 1)
        self.add(np.concatenate([np.c_[ring, np.full(segments, z)] for z in (z0, z1)]), label, color)


def _side_panel(points_xy, z: float, outward: float, label: str, color, builder: _Builder) -> None:
    """A thin panel over the plane z = const with the given outline, standing `PROUD` outward."""
    pts = np.asarray(points_xy, float)
    builder.add(np.concatenate([np.c_[pts, np.full(len(pts), z)], np.c_[pts, np.full(len(pts), z + outward)]]),
                label, color)


def build_car(p: CarParams) -> CarMesh:
    """The labelled mesh and keypoints of car `p`, centred on the origin."""
    b = _Builder()
    body, win, hub = np.array(p.body_color), np.array(p.window_color), np.array(p.hub_color)
    half_l, half_w = p.length / 2, p.width / 2
    y0, y1 = p.clearance, p.clearance + p.body_height          # body bottom, belt line
    y2 = y1 + p.cabin_height                                    # roof
    trunk = 0.7 * p.nose

    # Body: a convex side profile with a raked nose and tail, extruded across the width.
    profile = [(-half_l, y0), (half_l, y0), (half_l, y1 - 0.25 * p.body_height),
               (half_l - p.nose, y1), (-half_l + trunk, y1), (-half_l, y1 - 0.2 * p.body_height)]
    b.add([(x, y, z) for x, y in profile for z in (-half_w, half_w)], "car_body", body)

    # Cabin: the greenhouse trapezoid, a little narrower than the body; roof corners are keypoints.
    cab_w = half_w * 0.86
    cx0, cx1 = p.cabin_offset - p.cabin_length / 2, p.cabin_offset + p.cabin_length / 2
    rear_rake = 0.7 * p.windshield_rake
    cabin = [(cx0, y1), (cx1, y1), (cx1 - p.windshield_rake, y2), (cx0 + rear_rake, y2)]
    b.add([(x, y, z) for x, y in cabin for z in (-cab_w, cab_w)], "car_body", body)

    # Windshield and rear window: thin slabs on the raked cabin faces, pushed out along their normals.
    for sign, (xa, ya), (xb, yb) in ((1, (cx1, y1), (cx1 - p.windshield_rake, y2)), (-1, (cx0, y1), (cx0 + rear_rake, y2))):
        tangent = np.array([xb - xa, yb - ya]) / np.hypot(xb - xa, yb - ya)
        normal = sign * np.array([tangent[1], -tangent[0]])  # outward: forward for the front, back for the rear
        ends = [np.array([xa, ya]) + 0.06 * tangent * p.cabin_height, np.array([xb, yb]) - 0.1 * tangent]
        pts = [(*(e + n * normal), z) for e in ends for n in (0.0, PROUD) for z in (-cab_w * 0.9, cab_w * 0.9)]
        b.add(pts, "wind shield", win)

    # Side windows (front and rear, split by a pillar) and doors with handles, on both sides.
    split = cx0 + 0.55 * (cx1 - cx0)
    top_front = cx1 - p.windshield_rake
    top_rear = cx0 + rear_rake
    front_win = [(split + 0.04, y1 + 0.05), (cx1 - 0.08, y1 + 0.05), (top_front - 0.03, y2 - 0.06), (split + 0.04, y2 - 0.06)]
    rear_win = [(top_rear + 0.03, y2 - 0.06), (split - 0.04, y2 - 0.06), (split - 0.04, y1 + 0.05), (cx0 + 0.08, y1 + 0.05)]
    door_top = y1 - 0.04
    door_bot = y0 + 0.12 * p.body_height
    front_door = [(split, door_bot), (cx1 - 0.02, door_bot), (cx1 - 0.02, door_top), (split, door_top)]
    rear_door = [(cx0 + 0.05, door_bot), (split - 0.02, door_bot), (split - 0.02, door_top), (cx0 + 0.05, door_top)]
    handle_y = door_top - 0.22 * p.body_height
    for sign in (-1, 1):
        for outline in (front_win, rear_win):
            _side_panel(outline, sign * cab_w, sign * PROUD, "window", win, b)
        for outline in (front_door, rear_door):
            _side_panel(outline, sign * half_w, sign * PROUD, "door", body * 0.9, b)
            hx = max(x for x, _ in outline) - 0.3
            _side_panel([(hx, handle_y - 0.035), (hx + 0.2, handle_y - 0.035), (hx + 0.2, handle_y + 0.035),
                         (hx, handle_y + 0.035)], sign * (half_w + PROUD), sign * 2 * PROUD, "handle", body * 0.6, b)
        # Mirror: a small box at the front of the cabin, sticking out sideways.
        mz = sign * (cab_w + 0.02)
        b.box((cx1 - 0.22, y1 + 0.02, min(mz, mz + sign * 0.2)), (cx1 - 0.08, y1 + 0.14, max(mz, mz + sign * 0.2)),
              "mirror", body)

    # Lights and plates on the vertical front and rear faces.
    light_y = (y1 - 0.45 * p.body_height, y1 - 0.27 * p.body_height)
    plate_y = (y0 + 0.12 * p.body_height, y0 + 0.12 * p.body_height + 0.15)
    for sign, light, color in ((1, "head light", (1.0, 0.95, 0.7)), (-1, "tail light", (0.85, 0.05, 0.05))):
        face_x = sign * half_l
        for side in (-1, 1):
            z_in, z_out = side * (half_w - LIGHT_SPAN[0]), side * (half_w - LIGHT_SPAN[1])
            b.box((min(face_x, face_x + sign * PROUD), light_y[0], min(z_in, z_out)),
                  (max(face_x, face_x + sign * PROUD), light_y[1], max(z_in, z_out)), light, color)
        b.box((min(face_x, face_x + sign * PROUD), plate_y[0], -0.28),
              (max(face_x, face_x + sign * PROUD), plate_y[1], 0.28), "licence plate", (0.95, 0.95, 0.85))

    # Wheels: cylinders sticking slightly out of the body sides, each with a hub on its outer face.
    wheel_w = 0.22
    for x in (p.wheelbase / 2, -p.wheelbase / 2):
        for sign in (-1, 1):
            z_out = sign * (half_w + 0.02)
            z_in = z_out - sign * wheel_w
            b.disc((x, p.wheel_radius), p.wheel_radius, min(z_in, z_out), max(z_in, z_out), "wheel", (0.06, 0.06, 0.06))
            b.disc((x, p.wheel_radius), 0.6 * p.wheel_radius, min(z_out, z_out + sign * PROUD),
                   max(z_out, z_out + sign * PROUD), "wheelhub", hub)

    verts = np.concatenate(b.verts)
    center = np.array([0.0, p.height / 2, 0.0])
    keypoints = _keypoints(p, cab_w, cx0, cx1, rear_rake, light_y, plate_y) - center
    return CarMesh(
        verts=(verts - center).astype(np.float32),
        faces=np.concatenate(b.faces).astype(np.int64),
        face_labels=np.asarray(b.labels, np.int64),
        face_colors=np.asarray(b.colors, np.float32),
        keypoints=keypoints.astype(np.float32),
    )


def _keypoints(p: CarParams, cab_w, cx0, cx1, rear_rake, light_y, plate_y) -> np.ndarray:
    """World positions of KEYPOINT_NAMES, each on the outer surface of its part (before centring)."""
    half_l, half_w = p.length / 2, p.width / 2
    y1 = p.clearance + p.body_height
    y2 = y1 + p.cabin_height
    hub_z = half_w + 0.02 + PROUD
    light_z = half_w - sum(LIGHT_SPAN) / 2
    ly = sum(light_y) / 2
    front, rear = half_l + PROUD, -half_l - PROUD
    points = {
        "wheel_front_left": (p.wheelbase / 2, p.wheel_radius, -hub_z),
        "wheel_front_right": (p.wheelbase / 2, p.wheel_radius, hub_z),
        "wheel_rear_left": (-p.wheelbase / 2, p.wheel_radius, -hub_z),
        "wheel_rear_right": (-p.wheelbase / 2, p.wheel_radius, hub_z),
        "head_light_left": (front, ly, -light_z),
        "head_light_right": (front, ly, light_z),
        "tail_light_left": (rear, ly, -light_z),
        "tail_light_right": (rear, ly, light_z),
        "plate_front": (front, sum(plate_y) / 2, 0.0),
        "plate_rear": (rear, sum(plate_y) / 2, 0.0),
        "mirror_left": (cx1 - 0.15, y1 + 0.08, -cab_w - 0.22),
        "mirror_right": (cx1 - 0.15, y1 + 0.08, cab_w + 0.22),
        "roof_front_left": (cx1 - p.windshield_rake, y2, -cab_w),
        "roof_front_right": (cx1 - p.windshield_rake, y2, cab_w),
        "roof_rear_left": (cx0 + rear_rake, y2, -cab_w),
        "roof_rear_right": (cx0 + rear_rake, y2, cab_w),
    }
    return np.array([points[name] for name in KEYPOINT_NAMES], np.float64)
