"""Thermal frames at a door through the rig: pairing with a card, and tailgating."""

from __future__ import annotations

import asyncio

from door_rig import CAMERA, GATE, RESIDENT, DoorRig

from firmware_sim.thermal_camera import frame_bytes, random_scene, render
from gateway.pipeline.thermal_frames import TAILGATE_SLACK_S

WINDOW_S = 0.2


async def show(rig: DoorRig, temperatures: list[float], seed: int) -> str:
    """A frame of `temperatures` (nearest first) from the camera, read to the end."""
    pixels = frame_bytes(render(random_scene(seed, temperatures=temperatures), 160, 120))
    eid = rig.frame(CAMERA, 160, 120, pixels)
    for _ in range(500):  # the estimate runs on the thread pool
        if rig.journal.open.records or rig.desk.waiting == 0:
            break
        await asyncio.sleep(0.01)
    return eid


async def tailgating_judged() -> None:
    await asyncio.sleep(WINDOW_S + TAILGATE_SLACK_S + 0.1)


async def test_a_frame_completes_a_waiting_card_and_one_person_is_no_tailgating() -> None:
    rig = DoorRig(window_s=WINDOW_S)
    eid = rig.card(GATE, RESIDENT)
    frame = await show(rig, [36.6], seed=21)
    rig.journal.commit()
    assert rig.answers(GATE, eid)[-1] == "admit/ok"
    record = rig.record(frame)
    assert record.detail["people"] == 1 and record.detail["paired_event_id"] == eid
    await tailgating_judged()
    rig.journal.commit()
    assert rig.broker.alerts("tailgating") == []


async def test_two_people_one_admit_is_tailgating() -> None:
    rig = DoorRig(window_s=WINDOW_S)
    eid = rig.card(GATE, RESIDENT)
    await show(rig, [36.5, 36.7], seed=24)
    rig.journal.commit()
    assert rig.answers(GATE, eid)[-1] == "admit/ok"
    await tailgating_judged()
    rig.journal.commit()
    (alert,) = rig.broker.alerts("tailgating")
    assert alert["door"] == "dorm-main"
    assert alert["detail"] == {"people": 2, "admitted": 1, "window_s": WINDOW_S}


async def test_a_frame_nobody_can_read_is_logged_and_acked() -> None:
    rig = DoorRig(window_s=WINDOW_S)
    eid = rig.frame(CAMERA, 4, 4, b"\x00" * 64)  # 16 zero floats: no face, maybe no estimate
    for _ in range(500):
        if rig.journal.open.records:
            break
        await asyncio.sleep(0.01)
    rig.journal.commit()
    assert rig.record(eid).celsius is None
    assert rig.acked(eid) == 1
