"""A simulated radiometric thermal camera at a door, with the ground truth of every frame.

A scene (people at known body temperatures, the room's ambient) is drawn from a
seed; `render` turns it into the float32 degrees-Celsius frame a camera of a
given resolution would send. The scene is laid out on a fine grid and each
sensor pixel is the mean of the grid cells it sees, so a coarse 32x24 sensor
blurs a forehead into its face the way a real one does.

What a frame holds: a background warming from floor to ceiling (20-26 C), at
times a warm object (a radiator, a screen: 27-32 C), clothed bodies (30-32.5 C),
faces (34-35 C, cooler toward the edges, hair cooler still) and on each face a
forehead hot spot at the person's body temperature, less what a cold room takes
off the skin; then sensor noise. Nearer people are larger and drawn over those
behind; faces may touch and bodies hide parts of the people behind, but every
forehead stays in view, so the true count is the number of people.

The simulator draws frames itself (numpy only) and never uses the gateway's
estimator, so one mistake cannot hide on both sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from firmware_sim.terminal import SimTerminal

FINE_WIDTH = 320  # the scene grid; each sensor pixel averages the cells it covers
SIZES = ((160, 120), (32, 24))
REFERENCE_AMBIENT_C = 24.0


@dataclass(frozen=True, slots=True)
class PersonTruth:
    """One person as placed in the scene (positions in fractions of the frame)."""

    celsius: float  # true body temperature
    x: float  # head centre, 0 = left edge, 1 = right edge
    y: float  # head centre, 0 = top, 1 = bottom
    scale: float  # apparent size: larger is nearer the camera
    face_c: float  # the face's skin temperature
    clothing_c: float


@dataclass(frozen=True, slots=True)
class ThermalScene:
    """The ground truth of a frame."""

    seed: int
    ambient_c: float
    gradient_c: float  # top of the frame minus bottom
    people: tuple[PersonTruth, ...]
    warm_object: tuple[float, float, float, float, float] | None = None  # x0, y0, x1, y1, C

    @property
    def count(self) -> int:
        return len(self.people)

    @property
    def nearest(self) -> PersonTruth | None:
        return max(self.people, key=lambda p: p.scale, default=None)


@dataclass(frozen=True, slots=True)
class CameraModel:
    """How the camera misreads the scene: what a calibration has to undo."""

    noise_c: float = 0.08  # sensor noise, standard deviation
    bias_c: float = 0.0  # the sensor reads this much too warm
    ambient_coupling: float = 0.06  # skin reads this much cooler per C the room is below 24 C


def random_scene(
    seed: int, *, people: int | None = None, temperatures: Sequence[float] | None = None
) -> ThermalScene:
    """A random scene for `seed`: 0-4 people (or as many as given), one in six with a fever."""
    rng = np.random.default_rng(seed)
    if temperatures is not None:
        count = len(temperatures)
    else:
        count = int(rng.integers(0, 5)) if people is None else people
    if not 0 <= count <= 4:
        raise ValueError(f"a door camera sees 0-4 people, not {count}")
    temps = (
        [float(t) for t in temperatures]
        if temperatures is not None
        else [_body_temperature(rng) for _ in range(count)]
    )
    ambient = float(rng.uniform(20.0, 26.0))
    gradient = float(rng.uniform(-1.5, 1.5))
    placed = _place(rng, count)
    persons = tuple(
        PersonTruth(
            celsius=round(t, 2),
            x=x,
            y=y,
            scale=s,
            face_c=float(rng.uniform(34.0, 35.0)),
            clothing_c=float(rng.uniform(30.0, 32.5)),
        )
        for t, (x, y, s) in zip(temps, placed, strict=True)
    )
    warm = None
    if rng.random() < 0.2:
        x0, y0 = float(rng.uniform(0.0, 0.8)), float(rng.uniform(0.5, 0.8))
        warm = (x0, y0, x0 + 0.15, y0 + 0.2, float(rng.uniform(27.0, 32.0)))
    return ThermalScene(seed, ambient, gradient, persons, warm)


def _body_temperature(rng: np.random.Generator) -> float:
    if rng.random() < 1 / 6:
        return float(rng.uniform(37.4, 39.5))
    return float(rng.uniform(36.0, 37.1))


def _place(rng: np.random.Generator, count: int) -> list[tuple[float, float, float]]:
    """Head positions and scales; faces may touch (one in five) but foreheads stay apart."""
    for _ in range(500):
        touching = rng.random() < 0.2
        placed: list[tuple[float, float, float]] = []
        for _ in range(count):
            s = float(rng.uniform(0.75, 1.25))
            x = float(rng.uniform(0.1, 0.9))
            y = float(rng.uniform(0.25, 0.45))
            placed.append((x, y, s))
        if all(_compatible(a, b, touching) for i, a in enumerate(placed) for b in placed[:i]):
            return sorted(placed, key=lambda p: p[2])  # far (small) first: drawn first
    raise RuntimeError("could not place the people")  # pragma: no cover - 500 tries suffice


def _compatible(a: tuple[float, float, float], b: tuple[float, float, float], touch: bool) -> bool:
    near, far = (a, b) if a[2] >= b[2] else (b, a)
    rx = _HEAD_RX / FINE_WIDTH
    dx = abs(a[0] - b[0])
    heads = rx * (a[2] + b[2])
    if dx < heads * (0.8 if touch else 1.05):
        return False
    # A nearer body may hide the lower face of someone behind, never the forehead.
    torso_half = _TORSO_HALF * rx * near[2]
    if dx < torso_half + rx * far[2]:
        ry = _HEAD_RY / (FINE_WIDTH * 3 / 4)
        torso_top = near[1] + ry * near[2] * 1.05
        if far[1] - 0.05 * ry * far[2] > torso_top - 0.35 * ry * far[2]:
            return False
    return True


_HEAD_RX = 17.0  # fine-grid cells at scale 1
_HEAD_RY = 22.0
_TORSO_HALF = 1.5  # in head half-widths


def render(
    scene: ThermalScene, width: int, height: int, camera: CameraModel = CameraModel()
) -> np.ndarray:
    """The height x width float32 frame (degrees C) the camera sends for this scene."""
    over = max(1, math.ceil(FINE_WIDTH / width))
    fine_w, fine_h = width * over, height * over
    ys, xs = np.mgrid[0:fine_h, 0:fine_w].astype(np.float32)
    unit = fine_w / FINE_WIDTH  # fine cells per reference cell
    image = scene.ambient_c + scene.gradient_c * (0.5 - ys / fine_h)
    if scene.warm_object is not None:
        x0, y0, x1, y1, temp = scene.warm_object
        box = (xs >= x0 * fine_w) & (xs < x1 * fine_w) & (ys >= y0 * fine_h) & (ys < y1 * fine_h)
        image = np.where(box, temp, image)
    cold = REFERENCE_AMBIENT_C - scene.ambient_c
    for person in scene.people:  # far first: nearer people are drawn over them
        skin_loss = camera.ambient_coupling * cold
        image = _draw_person(image, person, xs, ys, fine_w, fine_h, unit, skin_loss)
    frame = image.reshape(height, over, width, over).mean(axis=(1, 3))
    noise = np.random.default_rng([scene.seed, width, height]).normal(
        0.0, camera.noise_c, frame.shape
    )
    return (frame + noise + camera.bias_c).astype(np.float32)


def _draw_person(
    image: np.ndarray,
    person: PersonTruth,
    xs: np.ndarray,
    ys: np.ndarray,
    fine_w: int,
    fine_h: int,
    unit: float,
    skin_loss: float,
) -> np.ndarray:
    cx, cy = person.x * fine_w, person.y * fine_h
    rx, ry = _HEAD_RX * unit * person.scale, _HEAD_RY * unit * person.scale
    # Body: shoulders under the head down past the bottom edge, clothing a little
    # warmer near the neck.
    torso_top = cy + ry * 1.05
    half = _TORSO_HALF * rx
    shoulder = np.clip((ys - torso_top) / (0.6 * ry), 0.0, 1.0)
    in_torso = (ys >= torso_top) & (np.abs(xs - cx) <= half * (0.55 + 0.45 * shoulder))
    clothing = person.clothing_c + 0.4 * np.exp(-(ys - torso_top) / (2 * ry))
    image = np.where(in_torso, clothing, image)
    neck = (ys >= cy + 0.7 * ry) & (ys < torso_top + 0.2 * ry) & (np.abs(xs - cx) <= 0.45 * rx)
    image = np.where(neck, person.face_c - 0.6 - skin_loss, image)
    # Face: warmest in the middle, cooler at the rim, hair on top.
    r2 = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2
    face = person.face_c - 0.8 * r2 - skin_loss
    hair = ys < cy - 0.72 * ry
    face = np.where(hair, person.clothing_c - 1.0, face)
    # Forehead: a plateau at the apparent body temperature with a soft rim.
    fx, fy = cx, cy - 0.38 * ry
    spot = np.sqrt(((xs - fx) / (0.45 * rx)) ** 2 + ((ys - fy) / (0.2 * ry)) ** 2)
    weight = np.clip((1.0 - spot) / 0.3, 0.0, 1.0)
    apparent = person.celsius - skin_loss
    face = np.where(hair, face, face + (apparent - face) * weight)
    return np.where(r2 <= 1.0, face, image)


def frame_bytes(frame: np.ndarray) -> bytes:
    """The frame as the wire carries it: little-endian float32, row-major."""
    return np.ascontiguousarray(frame, dtype="<f4").tobytes()


class SimThermalCamera(SimTerminal):
    """A thermal camera on MQTT: publishes `thermal_frame` events of rendered scenes."""

    def __init__(
        self,
        *args: object,
        size: tuple[int, int] = (160, 120),
        camera: CameraModel = CameraModel(),
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.size = size
        self.camera = camera

    def show(
        self, scene: ThermalScene, *, card_uid: str | None = None, event_id: str | None = None
    ) -> str:
        """Publish the frame of `scene`; returns its event id."""
        width, height = self.size
        frame = render(scene, width, height, self.camera)
        return self.thermal_frame(
            width, height, frame_bytes(frame), card_uid=card_uid, event_id=event_id
        )
