"""The thermal estimator against simulated frames with known ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devices.codecs.thermal_estimator import (
    Calibration,
    FrameError,
    decode_frame,
    estimate,
    estimate_payload,
    fit_calibration,
)
from firmware_sim.thermal_camera import (
    _HEAD_RY,
    FINE_WIDTH,
    CameraModel,
    frame_bytes,
    random_scene,
    render,
)
from gateway.pipeline.thermal_frames import COARSE_CALIBRATION, FINE_CALIBRATION

TRAIN = range(1000, 1200)  # calibration is fitted on these
TEST = range(300)  # and judged on these


def _matched(scene, est, width, height):
    """Pair each true person with the estimated face nearest to their forehead."""
    faces = list(est.faces)
    pairs = []
    for person in sorted(scene.people, key=lambda p: -p.scale):
        if not faces:
            break
        fx = person.x * width
        fy = (person.y - 0.38 * _HEAD_RY * person.scale / (FINE_WIDTH * 0.75)) * height
        face = min(faces, key=lambda f: (f.x - fx) ** 2 + (f.y - fy) ** 2)
        faces.remove(face)
        pairs.append((person, face))
    return pairs


def _run(seeds, width, height, calibration):
    errors, samples, exact = [], [], 0
    for seed in seeds:
        scene = random_scene(seed)
        est = estimate(render(scene, width, height), calibration)
        exact += est.people == scene.count
        for person, face in _matched(scene, est, width, height):
            errors.append(abs(face.celsius - person.celsius))
            samples.append((face.raw_c, est.ambient_c, person.celsius))
    return float(np.mean(errors)), float(np.max(errors)), exact / len(seeds), samples


@pytest.fixture(scope="module")
def figures():
    table = {}
    for width, height in ((160, 120), (32, 24)):
        raw_mae, _, _, samples = _run(TRAIN, width, height, Calibration())
        fitted = fit_calibration(samples)
        mae, worst, counted, _ = _run(TEST, width, height, fitted)
        table[(width, height)] = (raw_mae, fitted, mae, worst, counted)
    print("\nthermal estimator on", len(TEST), "simulated frames of 0-4 people:")
    print(
        f"{'size':>8} {'MAE uncal':>10} {'offset_c':>9} {'amb_coeff':>9} {'MAE':>6} {'worst':>6} {'count ok':>9}"
    )
    for (w, h), (raw_mae, cal, mae, worst, counted) in table.items():
        print(
            f"{w:>4}x{h:<3} {raw_mae:>10.3f} {cal.offset_c:>9.2f} {cal.ambient_coeff:>9.3f}"
            f" {mae:>6.3f} {worst:>6.2f} {counted:>9.1%}"
        )
    return table


def test_160x120_meets_the_accuracy_target(figures):
    _, _, mae, _, counted = figures[(160, 120)]
    assert mae <= 0.3
    assert counted >= 0.98


def test_32x24_figures_are_known(figures):
    """Coarse frames blur the forehead into the face: they need a larger offset."""
    raw_mae, fitted, mae, _, counted = figures[(32, 24)]
    assert mae < raw_mae
    assert fitted.offset_c > 0.8
    assert mae <= 0.7 and counted >= 0.95


def test_the_gateway_defaults_match_the_fitted_calibration(figures):
    for size, default in (((160, 120), FINE_CALIBRATION), ((32, 24), COARSE_CALIBRATION)):
        fitted = figures[size][1]
        assert abs(fitted.offset_c - default.offset_c) < 0.1
        assert abs(fitted.ambient_coeff - default.ambient_coeff) < 0.03


def test_the_default_calibration_meets_the_target_too():
    mae, _, counted, _ = _run(TEST, 160, 120, FINE_CALIBRATION)
    assert mae <= 0.3 and counted >= 0.98


def test_an_empty_room_has_no_people_and_reads_the_ambient():
    scene = random_scene(5, people=0)
    est = estimate(render(scene, 160, 120))
    assert est.people == 0 and est.nearest is None
    assert abs(est.ambient_c - scene.ambient_c) < 0.5


def test_a_fever_reads_as_a_fever():
    scene = random_scene(11, temperatures=[38.5])
    est = estimate(render(scene, 160, 120), FINE_CALIBRATION)
    assert est.people == 1 and abs(est.nearest.celsius - 38.5) <= 0.3


def test_the_nearest_person_comes_first():
    scene = random_scene(3, temperatures=[36.5, 38.8])
    est = estimate(render(scene, 160, 120), FINE_CALIBRATION)
    assert est.people == 2
    assert abs(est.nearest.celsius - scene.nearest.celsius) <= 0.3


def test_a_device_offset_is_applied():
    scene = random_scene(11, temperatures=[36.6])
    frame = render(scene, 160, 120, CameraModel(bias_c=0.8))
    off = estimate(frame, FINE_CALIBRATION).nearest.celsius
    fixed = estimate(frame, Calibration(FINE_CALIBRATION.offset_c - 0.8, 0.06)).nearest.celsius
    assert abs(off - 36.6 - 0.8) <= 0.3 and abs(fixed - 36.6) <= 0.3


def test_payload_round_trip_and_bad_sizes():
    scene = random_scene(2, temperatures=[36.9])
    frame = render(scene, 32, 24)
    payload = frame_bytes(frame)
    assert np.array_equal(decode_frame(32, 24, payload), frame)
    assert estimate_payload(32, 24, payload).people == 1
    with pytest.raises(FrameError):
        decode_frame(32, 23, payload)


def test_dead_pixels_do_not_break_the_estimate():
    frame = render(random_scene(4, temperatures=[36.4, 36.8]), 160, 120)
    frame[::7, ::5] = np.nan
    frame[3, 3] = np.inf
    est = estimate(frame)
    assert est.people == 2 and all(math.isfinite(f.celsius) for f in est.faces)
    assert estimate(np.full((24, 32), np.nan, np.float32)).people == 0


def test_the_simulator_is_deterministic_per_seed():
    a, b = random_scene(42), random_scene(42)
    assert a == b
    assert np.array_equal(render(a, 160, 120), render(b, 160, 120))
    assert not np.array_equal(render(a, 160, 120), render(random_scene(43), 160, 120))


def test_the_simulator_draws_zero_to_four_people_with_fevers():
    scenes = [random_scene(s) for s in range(200)]
    assert {s.count for s in scenes} == {0, 1, 2, 3, 4}
    temps = [p.celsius for s in scenes for p in s.people]
    assert any(t >= 37.3 for t in temps) and any(t < 37.3 for t in temps)
    frame = render(scenes[0], 32, 24)
    assert frame.shape == (24, 32) and frame.dtype == np.float32


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 3.3e38, -300.0])
def test_a_frame_with_pixels_no_sensor_gives_is_refused(bad):
    from devices.codecs.thermal_estimator import FrameError, decode_frame

    pixels = np.full((2, 2), 30.0, dtype="<f4")
    pixels[1, 1] = bad
    with pytest.raises(FrameError):
        decode_frame(2, 2, pixels.tobytes())
