"""The demo's door hardware: an OSDP reader and an RDM6300 on pseudo-terminals, a thermal camera.

`demo_hardware(...)` adds them to a generated campus (extra manifest rows) and
`DoorHardware` plays them: a showcase with expected outcomes, then traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import osdp

from devices.transports.mqtt import BrokerAddress
from firmware_sim.campus import CampusFacts
from firmware_sim.fleet import AlertWatch, Fleet
from firmware_sim.pty_card_readers import OsdpReader, PtyPort, Rdm6300Reader
from firmware_sim.scenarios import ScenarioResult
from firmware_sim.thermal_camera import PersonTruth, SimThermalCamera, ThermalScene

EM4100_TAG = "0100A1B2C3"  # the EM4100 tag the demo gives one staff member
UNKNOWN_EM4100_TAG = "0F00DEAD01"


@dataclass(frozen=True, slots=True)
class HardwarePlan:
    """Where the demo's hardware sits and what it reads."""

    osdp_device: str
    osdp_door: str
    osdp_port: Path
    osdp_key: str
    rdm_device: str
    rdm_door: str
    rdm_port: Path
    camera_device: str
    camera_door: str
    staff_card: str
    manifest: dict[str, list[dict[str, Any]]]


def demo_hardware(manifest: dict[str, Any], facts: CampusFacts, dev_dir: Path) -> HardwarePlan:
    """Extra manifest rows: an OSDP reader at the office, an RDM6300 at the gate, a camera at a dormitory."""
    staff_row = next(row for row in manifest["people"] if facts.staff_card in row.get("cards", []))
    with_tag = {**staff_row, "cards": [*staff_row["cards"], EM4100_TAG]}
    osdp_port, rdm_port = dev_dir / "osdp-office", dev_dir / "rdm6300-gate"
    rows = {
        "devices": [
            {"id": "rdr-osdp-office", "door": facts.office_door, "kind": "card_reader",
             "transport": "serial", "port": str(osdp_port), "protocol": "osdp"},
            {"id": "rdr-em-gate", "door": facts.gate_door, "kind": "card_reader",
             "transport": "serial", "port": str(rdm_port), "protocol": "rdm6300"},
            {"id": f"cam-{facts.temperature_door}", "door": facts.temperature_door,
             "kind": "thermal_camera", "transport": "mqtt"},
        ],
        "people": [with_tag],
    }  # fmt: skip
    return HardwarePlan(
        osdp_device="rdr-osdp-office",
        osdp_door=facts.office_door,
        osdp_port=osdp_port,
        osdp_key=secrets.token_hex(16),
        rdm_device="rdr-em-gate",
        rdm_door=facts.gate_door,
        rdm_port=rdm_port,
        camera_device=f"cam-{facts.temperature_door}",
        camera_door=facts.temperature_door,
        staff_card=facts.staff_card,
        manifest=rows,
    )


def one_person(celsius: float, seed: int, *, x: float = 0.5) -> ThermalScene:
    person = PersonTruth(celsius=celsius, x=x, y=0.35, scale=1.0, face_c=34.6, clothing_c=27.0)
    return ThermalScene(seed=seed, ambient_c=23.0, gradient_c=1.0, people=(person,))


def two_people(seed: int) -> ThermalScene:
    near = PersonTruth(celsius=36.6, x=0.35, y=0.35, scale=1.0, face_c=34.6, clothing_c=27.0)
    behind = PersonTruth(celsius=36.8, x=0.72, y=0.3, scale=0.8, face_c=34.4, clothing_c=26.0)
    return ThermalScene(seed=seed, ambient_c=23.0, gradient_c=1.0, people=(near, behind))


class DoorHardware:
    """The simulated readers and camera of the demo, and what they do."""

    def __init__(
        self, plan: HardwarePlan, broker: BrokerAddress, prefix: str, *, password: str | None = None
    ) -> None:
        """`password`: the camera's own broker password (its device account), if any."""
        self.plan = plan
        plan.osdp_port.parent.mkdir(parents=True, exist_ok=True)
        self.osdp_port = PtyPort(plan.osdp_port)
        self.rdm_port = PtyPort(plan.rdm_port)
        self.osdp = OsdpReader(self.osdp_port, scbk=bytes.fromhex(plan.osdp_key))
        self.rdm6300 = Rdm6300Reader(self.rdm_port)
        self.camera = SimThermalCamera(broker, plan.camera_device, prefix=prefix, password=password)
        self._seed = 1000

    async def start(self) -> None:
        self.osdp.start()
        await self.camera.start()

    async def stop(self) -> None:
        await self.camera.stop()
        self.osdp.stop()
        self.osdp_port.unplug()
        self.rdm_port.unplug()

    def _next_seed(self) -> int:
        self._seed += 1
        return self._seed

    async def _osdp_led(self, card: str, timeout: float) -> str:
        """Present a card and return the colour of the first LED command the panel sends back."""
        await asyncio.sleep(0.3)  # let the previous card's LED, buzzer and relay commands land
        since = len(self.osdp.snapshot())
        self.osdp.present_uid(card)
        colours = {osdp.CommandLEDColor.Green: "green", osdp.CommandLEDColor.Red: "red"}
        for _ in range(int(timeout * 20)):
            leds = [c for c in self.osdp.snapshot()[since:] if "on_color" in c]
            if leds:
                return colours.get(leds[0]["on_color"], "other")
            await asyncio.sleep(0.05)
        return "no feedback"

    async def showcase(
        self, fleet: Fleet, facts: CampusFacts, alerts: AlertWatch, *, timeout: float = 20.0
    ) -> list[ScenarioResult]:
        """One card at each reader and one person before the camera, with what should happen."""
        osdp = ScenarioResult("OSDP reader (secure channel) at the office")
        for _ in range(int(timeout * 10)):  # the panel needs a moment to bring the reader up
            if self.osdp.online:
                break
            await asyncio.sleep(0.1)
        osdp.expect("reader online and secure", "yes", "yes" if self.osdp.secure else "no")
        osdp.expect(
            "staff card",
            "green",
            await self._osdp_led(self.plan.staff_card, timeout),
        )
        osdp.expect(
            "unknown card",
            "red",
            await self._osdp_led("DEADBEEF", timeout),
        )

        rdm = ScenarioResult("RDM6300 reader at the gate")
        since = alerts.mark()
        self.rdm6300.present(UNKNOWN_EM4100_TAG)
        alert = await alerts.wait_for(
            "outsider", device=self.plan.rdm_device, since=since, timeout=timeout
        )
        rdm.expect(
            "unknown EM4100 tag", "outsider alert", "outsider alert" if alert else "no alert"
        )

        thermal = ScenarioResult("thermal camera at the dormitory door")
        terminal = fleet[facts.temperature_device]
        eid = terminal.swipe(facts.resident_cards[7])
        self.camera.show(one_person(36.6, self._next_seed()))
        decision = await terminal.decision(eid, timeout=timeout)
        thermal.expect(
            "card, then a 36.6 C face", "admit/ok", f"{decision['decision']}/{decision['reason']}"
        )
        return [osdp, rdm, thermal]

    async def traffic(
        self, fleet: Fleet, facts: CampusFacts, stop: asyncio.Event, every_s: float = 6.0
    ) -> None:
        """Readers and camera in use: staff at the office, a tag at the gate, residents before the camera."""
        terminal = fleet[facts.temperature_device]
        rounds = 0
        while not stop.is_set():
            rounds += 1
            self.osdp.present_uid(self.plan.staff_card)
            self.rdm6300.present(EM4100_TAG)
            terminal.swipe(facts.resident_cards[rounds % len(facts.resident_cards)])
            # Every fifth time someone slips in behind the resident: the camera sees two.
            scene = (
                two_people(self._next_seed())
                if rounds % 5 == 0
                else one_person(36.5, self._next_seed())
            )
            self.camera.show(scene)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
