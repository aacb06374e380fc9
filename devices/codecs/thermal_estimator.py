"""Radiometric thermal frames -> body temperatures and a people count (OpenCV).

Pure and deterministic: a frame of float32 degrees Celsius (row-major, as the
`thermal_frame` event carries it) goes in, a `ThermalEstimate` comes out. The
gateway runs `estimate_payload` off the event loop.

How a frame is read:

1. **Ambient**: the median of the pixels colder than skin (`SKIN_MIN_C`), i.e.
   the background (walls, floor) around the people.
2. **Faces**: pixels at or above `FACE_MIN_C` (clothed bodies stay below it,
   bare skin of the face lies above it), grouped into connected components;
   specks smaller than a size scaled to the frame are noise and dropped.
3. **People**: each face has one forehead hot spot (pixels at or above
   `HOT_SPOT_MIN_C`); a face component holding several separate hot spots is
   several people whose faces touch (one partly in front of the other).
4. **Body temperature** per person: the mean of the hottest pixels of the hot
   spot (of the face when no hot spot stands out, as in a coarse 32x24 frame),
   then the device's calibration: `raw + offset_c + ambient_coeff * (ambient_ref_c - ambient)`.
   Skin reads lower in a cold room; the ambient term puts that back.

People are ordered nearest first: the largest face is closest to the camera,
which hangs at the door.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

SKIN_MIN_C = 28.0  # below: background; clothing and skin are warmer
FACE_MIN_C = 33.4  # bare facial skin; clothed bodies read 30-33 C
HOT_SPOT_MIN_C = 35.4  # forehead and inner eye corners: body temperature shows here
REFERENCE_PIXELS = 160 * 120  # sizes below are tuned on this resolution and scaled
MIN_FACE_PX = 12  # at 160x120
MIN_HOT_SPOT_PX = 2  # at 160x120
TOP_PIXELS = 4  # at most this many hottest pixels are averaged


@dataclass(frozen=True, slots=True)
class Calibration:
    """A camera's correction: `offset_c + ambient_coeff * (ambient_ref_c - ambient)` is added."""

    offset_c: float = 0.0
    ambient_coeff: float = 0.0
    ambient_ref_c: float = 24.0

    def apply(self, raw_c: float, ambient_c: float) -> float:
        return raw_c + self.offset_c + self.ambient_coeff * (self.ambient_ref_c - ambient_c)


@dataclass(frozen=True, slots=True)
class Face:
    """One person found in the frame."""

    celsius: float  # calibrated body temperature
    raw_c: float  # mean of the hottest pixels, before calibration
    area_px: int  # pixels of the face (shared by people whose faces touch)
    x: float  # centre of the hot spot (or face), pixels from the left
    y: float  # and from the top


@dataclass(frozen=True, slots=True)
class ThermalEstimate:
    """What a frame shows: people nearest first, and the ambient temperature."""

    width: int
    height: int
    ambient_c: float
    faces: tuple[Face, ...]

    @property
    def people(self) -> int:
        return len(self.faces)

    @property
    def nearest(self) -> Face | None:
        return self.faces[0] if self.faces else None


class FrameError(ValueError):
    """The pixel bytes do not make a frame: wrong size, or readings no sensor gives."""


# A thermal sensor reads nothing outside this; NaN, infinities and 1e38 are broken pixels
# or a broken sender, and would otherwise flow into temperatures and the access log.
PIXEL_MIN_C, PIXEL_MAX_C = -60.0, 400.0


def decode_frame(width: int, height: int, celsius_f32le: bytes) -> np.ndarray:
    """The event's bytes as a height x width float32 array (little-endian, row-major)."""
    if width < 1 or height < 1 or len(celsius_f32le) != width * height * 4:
        raise FrameError(f"{len(celsius_f32le)} bytes is not a {width}x{height} float32 frame")
    frame = np.frombuffer(celsius_f32le, dtype="<f4").reshape(height, width).astype(np.float32)
    finite = np.isfinite(frame)
    if not finite.all() or frame.min() < PIXEL_MIN_C or frame.max() > PIXEL_MAX_C:
        bad = int((~finite).sum() + ((frame < PIXEL_MIN_C) | (frame > PIXEL_MAX_C))[finite].sum())
        raise FrameError(f"{bad} pixels are not readings ({PIXEL_MIN_C:g} to {PIXEL_MAX_C:g} C)")
    return frame


def estimate_payload(
    width: int, height: int, celsius_f32le: bytes, calibration: Calibration = Calibration()
) -> ThermalEstimate:
    """`decode_frame` then `estimate`: the unit of work the gateway hands to its thread pool."""
    return estimate(decode_frame(width, height, celsius_f32le), calibration)


def estimate(frame: np.ndarray, calibration: Calibration = Calibration()) -> ThermalEstimate:
    """Body temperature of each person in the frame, nearest first, and the ambient."""
    height, width = frame.shape
    pixels = np.asarray(frame, dtype=np.float32)
    finite = np.isfinite(pixels)
    if not finite.any():
        return ThermalEstimate(width, height, math.nan, ())
    ambient = _ambient(pixels[finite])
    # Dead pixels (NaN, inf) read as the room, so they neither make nor break a face.
    pixels = np.where(finite, pixels, np.float32(ambient))
    scale = (width * height) / REFERENCE_PIXELS
    # Smoothing beats the sensor noise on fine frames; a coarse frame has no pixels to spare.
    smooth = cv2.GaussianBlur(pixels, (3, 3), 0) if width >= 64 and height >= 48 else pixels
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (smooth >= FACE_MIN_C).astype(np.uint8), connectivity=8
    )
    min_face = max(1, round(MIN_FACE_PX * scale))
    blobs = [b for b in range(1, count) if stats[b, cv2.CC_STAT_AREA] >= min_face]
    people: list[tuple[int, Face]] = []
    spotless: list[tuple[int, Face]] = []
    for blob in blobs:
        area = int(stats[blob, cv2.CC_STAT_AREA])
        found, has_spot = _people_in_face(
            pixels, smooth, labels == blob, area, scale, ambient, calibration
        )
        (people if has_spot else spotless).extend((blob, face) for face in found)
    boxes = [stats[blob] for blob, _ in people]
    # Warm skin without a forehead right under a face is that person's neck or chin.
    people.extend(item for item in spotless if not _under_a_face(item[1], boxes))
    faces = sorted(people, key=lambda item: (-item[1].area_px, item[1].x, item[1].y))
    return ThermalEstimate(width, height, ambient, tuple(face for _, face in faces))


def _under_a_face(face: Face, boxes: list[np.ndarray]) -> bool:
    for box in boxes:
        left, top = box[cv2.CC_STAT_LEFT], box[cv2.CC_STAT_TOP]
        width, height = box[cv2.CC_STAT_WIDTH], box[cv2.CC_STAT_HEIGHT]
        if left <= face.x < left + width and top + height / 2 <= face.y < top + 2 * height:
            return True
    return False


def _ambient(values: np.ndarray) -> float:
    background = values[values < SKIN_MIN_C]
    return float(np.median(background if background.size else values))


def _people_in_face(
    pixels: np.ndarray,
    smooth: np.ndarray,
    face_mask: np.ndarray,
    area: int,
    scale: float,
    ambient: float,
    calibration: Calibration,
) -> tuple[list[Face], bool]:
    """The people of one face component, and whether any forehead hot spot showed."""
    hot = ((smooth >= HOT_SPOT_MIN_C) & face_mask).astype(np.uint8)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(hot, connectivity=8)
    min_hot = max(1, round(MIN_HOT_SPOT_PX * scale))
    spots = [s for s in range(1, count) if stats[s, cv2.CC_STAT_AREA] >= min_hot]
    if not spots:
        ys, xs = np.nonzero(face_mask)
        raw = _top_mean(pixels[face_mask])
        face = _face(raw, area, float(xs.mean()), float(ys.mean()), ambient, calibration)
        return [face], False
    faces = []
    for spot in spots:
        # Found on the smoothed frame, read on the sensor's own pixels: smoothing
        # would pull a small forehead down toward the face around it.
        raw = _top_mean(pixels[labels == spot])
        x, y = centroids[spot]
        faces.append(_face(raw, area, float(x), float(y), ambient, calibration))
    return faces, True


def _top_mean(values: np.ndarray) -> float:
    k = max(1, min(TOP_PIXELS, values.size // 3))
    return float(np.partition(values, values.size - k)[-k:].mean())


def _face(
    raw: float, area: int, x: float, y: float, ambient: float, calibration: Calibration
) -> Face:
    celsius = round(calibration.apply(raw, ambient), 2)
    return Face(celsius=celsius, raw_c=raw, area_px=area, x=x, y=y)


def fit_calibration(
    samples: Iterable[tuple[float, float, float]], *, ambient_ref_c: float = 24.0
) -> Calibration:
    """Least-squares calibration from (raw_c, ambient_c, true_c) of reference measurements.

    Fits `true - raw = offset_c + ambient_coeff * (ambient_ref_c - ambient)`; with a
    single ambient in the samples only the offset is fitted.
    """
    rows = np.array(list(samples), dtype=np.float64)
    if rows.size == 0:
        raise ValueError("no samples to calibrate from")
    error = rows[:, 2] - rows[:, 0]
    cold = ambient_ref_c - rows[:, 1]
    if np.ptp(cold) < 0.5:
        return Calibration(float(error.mean()), 0.0, ambient_ref_c)
    design = np.column_stack([np.ones_like(cold), cold])
    (offset, coeff), *_ = np.linalg.lstsq(design, error, rcond=None)
    return Calibration(float(offset), float(coeff), ambient_ref_c)
