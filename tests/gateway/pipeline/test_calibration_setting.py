"""Per-camera calibration from CAMPUSGATE_THERMAL_CALIBRATIONS down to the frame reader."""

from __future__ import annotations

import json

import click
import numpy as np
import pytest

from devices.codecs.thermal_estimator import Calibration
from devices.transports.mqtt import BrokerAddress
from firmware_sim.thermal_camera import frame_bytes, random_scene, render
from gateway.cli.runtime import gateway_config
from gateway.domain.events import ThermalFrameEvent
from gateway.pipeline.thermal_frames import ThermalDesk, default_calibration, parse_calibrations
from gateway.settings import Settings


def test_parse_calibrations():
    parsed = parse_calibrations('{"cam-1": {"offset_c": 0.4, "ambient_coeff": 0.05}, "cam-2": {}}')
    assert parsed == {
        "cam-1": Calibration(offset_c=0.4, ambient_coeff=0.05),
        "cam-2": Calibration(),
    }
    assert parse_calibrations(None) == {}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("not json", "is not JSON"),
        ("[1]", "must be a JSON object"),
        ('{"cam": 3}', "must be an object"),
        ('{"cam": {"offset": 1}}', "unknown field 'offset'"),
        ('{"cam": {"offset_c": "hot"}}', "must be a number"),
        ('{"cam": {"offset_c": 25}}', "not a calibration"),
    ],
)
def test_bad_calibrations_are_one_line_errors(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        parse_calibrations(text)
    settings = Settings(thermal_calibrations=text)
    with pytest.raises(click.ClickException):
        gateway_config(
            settings, "postgresql://x/y", BrokerAddress.parse("mqtt://h:1"), client_id="g"
        )


async def test_a_configured_offset_moves_that_camera_only():
    fine = default_calibration(160, 120)
    hot = {"offset_c": fine.offset_c + 1.0, "ambient_coeff": fine.ambient_coeff}
    settings = Settings(thermal_calibrations=json.dumps({"cam-hot": hot}))
    config = gateway_config(
        settings, "postgresql://x/y", BrokerAddress.parse("mqtt://h:1"), client_id="g"
    )
    desk = ThermalDesk(window_s=2.0, calibrations=config.policy.thermal_calibrations)
    scene = random_scene(7, temperatures=[36.6])
    pixels = frame_bytes(render(scene, 160, 120))
    from datetime import UTC, datetime

    def frame(device: str) -> ThermalFrameEvent:
        return ThermalFrameEvent(device, "f1", datetime.now(UTC), 160, 120, pixels)

    plain = await desk.estimate(frame("cam-plain"))
    shifted = await desk.estimate(frame("cam-hot"))
    assert desk.calibration("cam-plain", 160, 120) == default_calibration(160, 120)
    assert np.isclose(shifted.nearest.celsius - plain.nearest.celsius, 1.0, atol=1e-3)
