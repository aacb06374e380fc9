"""A door path with no broker and no database: the real Ingest and DoorDesk between fakes.

In the spirit of pymodbus's null-modem transport, only the two boundaries are fake:
`FakeBroker` stands where paho's client would (it records publishes and acks) and
`FakeJournal` where PostgreSQL would (a test commits a batch when it wants, or refuses
rows of it). Everything between them, from topic parsing to the follow-ups that send
decisions, is the gateway's own code, so door logic is tested in milliseconds while the
end-to-end tests (tests/e2e/pipeline, tests/e2e/serial) keep the real parts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

from devices.transports.mqtt import Message
from gateway.domain.campus import AccessRecord, CampusRoster
from gateway.domain.decisions import Decision
from gateway.domain.events import CardEvent
from gateway.domain.roster import (
    Card,
    Device,
    DeviceKind,
    Door,
    DoorDirection,
    Grant,
    GrantSubject,
    Person,
    PersonKind,
    Transport,
    Zone,
    ZoneKind,
)
from gateway.metrics import Counters
from gateway.pipeline.alerting import Alerter
from gateway.pipeline.arrival import Arrival
from gateway.pipeline.dedupe import Duplicates, SeenEvents
from gateway.pipeline.device_clocks import DeviceClocks
from gateway.pipeline.device_watch import DeviceWatch
from gateway.pipeline.doors import DoorDesk, DoorPolicy
from gateway.pipeline.ingest import Ingest
from gateway.pipeline.journal import Batch, Journal
from gateway.pipeline.publisher import Publisher
from gateway.pipeline.roster_state import RosterState
from gateway.pipeline.shared_occupancy import SharedOccupancy
from gateway.pipeline.topics import Topics
from gateway.policy.occupancy import Occupancy
from gateway.policy.roster_index import RosterIndex

PREFIX = "rig"
FEVER_C = 37.3
WINDOW_S = 5.0

# The rig's campus: a dormitory whose main door needs a temperature, an exit that does
# not, and a lab with a capacity of one.
GATE = "gate-term"  # terminal at dorm-main (requires a temperature)
EXIT = "exit-term"  # terminal at dorm-exit
LAB = "lab-term"  # terminal at lab-door
CAMERA = "gate-cam"  # thermal camera at dorm-main
READER = "exit-rdm"  # serial RDM6300 reader at dorm-exit (its port is never opened here)
RESIDENT, STRANGER, REVOKED = "C0000001", "C0000002", "C0000003"


def rig_roster() -> CampusRoster:
    people = (
        Person("P1", PersonKind.STUDENT, "Resident One"),
        Person("P2", PersonKind.STUDENT, "Stranger Two"),
        Person("P3", PersonKind.STUDENT, "Revoked Three"),
    )
    return CampusRoster(
        zones=(
            Zone("dorm", "Dormitory", ZoneKind.DORMITORY, capacity=100),
            Zone("lab", "Lab", ZoneKind.LAB, capacity=1),
        ),
        doors=(
            Door("dorm-main", "dorm", DoorDirection.IN, requires_temperature=True),
            Door("dorm-exit", "dorm", DoorDirection.OUT),
            Door("lab-door", "lab", DoorDirection.BOTH),
        ),
        devices=(
            Device(GATE, "dorm-main", DeviceKind.TERMINAL),
            Device(EXIT, "dorm-exit", DeviceKind.TERMINAL),
            Device(LAB, "lab-door", DeviceKind.TERMINAL),
            Device(CAMERA, "dorm-main", DeviceKind.THERMAL_CAMERA),
            Device(
                READER,
                "dorm-exit",
                DeviceKind.CARD_READER,
                Transport.SERIAL,
                port="/dev/null",
                protocol="rdm6300",
            ),
        ),
        people=people,
        cards=(
            Card(RESIDENT, "P1"),
            Card(STRANGER, "P2"),
            Card(REVOKED, "P3", revoked=True),
        ),
        grants=(
            Grant(GrantSubject(person_id="P1"), "dorm"),
            Grant(GrantSubject(person_id="P3"), "dorm"),
            Grant(GrantSubject(person_id="P1"), "lab"),
            Grant(GrantSubject(person_id="P2"), "lab"),
        ),
    )


class FakeBroker:
    """Where paho's client would be: what was published, and which messages were acked."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.acked: list[Message] = []
        self._mids = count(1)

    def next_mid(self) -> int:
        return next(self._mids)

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        expiry_s: int | None = None,
    ) -> None:
        self.published.append((topic, payload))

    def ack(self, message: Message) -> None:
        self.acked.append(message)

    def decisions(self, device_id: str) -> list[dict[str, Any]]:
        topic = f"{PREFIX}/devices/{device_id}/commands"
        return [json.loads(p) for t, p in self.published if t == topic]

    def alerts(self, kind: str | None = None) -> list[dict[str, Any]]:
        head = f"{PREFIX}/alerts/"
        found = [json.loads(p) for t, p in self.published if t.startswith(head)]
        return [a for a in found if kind is None or a["kind"] == kind]


class FakeJournal:
    """Where the database would be: batches are committed when the test says so."""

    def __init__(self) -> None:
        self._batch = Batch()
        self.records: list[AccessRecord] = []
        self.alerts: list[Any] = []
        self.health: list[Any] = []

    def current(self) -> Batch:
        return self._batch

    def kick(self) -> None:
        pass  # the test commits explicitly

    @property
    def open(self) -> Batch:
        return self._batch

    def commit(self, *, refuse: Iterable[object] = ()) -> None:
        """Write the open batch (less `refuse`) and run its follow-ups, as the journal does."""
        batch, self._batch = self._batch, Batch()
        refused = {id(item) for item in refuse}
        self.records += [r for r in batch.records if id(r) not in refused]
        self.alerts += batch.alerts
        self.health += batch.health
        for follow_up in batch.after:
            Journal._follow(follow_up, refused)


class FakeArrival(Arrival):
    """A third transport's arrival: it only records what the door path asked of it."""

    __slots__ = ("acks", "replies")

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC), time.perf_counter())
        self.acks = 0
        self.replies: list[Decision] = []

    def ack(self) -> None:
        self.acks += 1

    def reply(self, decision: Decision) -> None:
        self.replies.append(decision)


class DoorRig:
    """The real ingest and door desk of one worker, between a fake broker and journal."""

    def __init__(
        self,
        roster: CampusRoster | None = None,
        *,
        window_s: float = WINDOW_S,
        late_after_s: float = 10.0,
        shared_dsn: str | None = None,
    ) -> None:
        """`shared_dsn`: the zone counts are shared through this database (a real one,
        `SharedOccupancy`; start it with `start_shared`), as among several workers."""
        self.counters = Counters()
        self.broker = FakeBroker()
        self.journal = FakeJournal()
        self.topics = Topics(PREFIX)
        self.roster = RosterState(None, "")  # type: ignore[arg-type]  # no pool: never started
        self.roster.index = RosterIndex.build(roster or rig_roster())
        self.publisher = Publisher(
            self.broker,  # type: ignore[arg-type]
            self.topics,
            late_after_s=late_after_s,
            counters=self.counters,
        )
        journal: Any = self.journal
        alerter = Alerter(journal, self.publisher, self.counters)
        self.seen = SeenEvents()
        duplicates = Duplicates(self.seen, self.publisher, self.counters)
        occupancy = Occupancy()
        self.shared = (
            SharedOccupancy(shared_dsn, self.roster, occupancy) if shared_dsn is not None else None
        )
        self.desk = DoorDesk(
            roster=self.roster,
            journal=journal,
            publisher=self.publisher,
            alerter=alerter,
            duplicates=duplicates,
            occupancy=occupancy,
            policy=DoorPolicy(
                tz=ZoneInfo("UTC"), fever_threshold_c=FEVER_C, temperature_window_s=window_s
            ),
            counters=self.counters,
            shared=self.shared,
        )
        devices = DeviceWatch(None, journal, alerter, self.counters)  # type: ignore[arg-type]
        clocks = DeviceClocks(alerter, self.counters, max_late=timedelta(hours=12))
        self.devices = devices
        self.ingest = Ingest(
            topics=self.topics,
            roster=self.roster,
            desk=self.desk,
            devices=devices,
            clocks=clocks,
            duplicates=duplicates,
            publisher=self.publisher,
            counters=self.counters,
        )
        self._ids = count(1)

    async def start_shared(self) -> SharedOccupancy:
        """Start the shared counts; once connected and counting the rig's zones."""
        shared = self.shared
        assert shared is not None
        shared.start()
        for _ in range(200):
            if shared.connected and {"dorm", "lab"} <= set(shared._known):
                return shared
            await asyncio.sleep(0.05)
        raise AssertionError("the shared zone counts did not connect")

    # ---- what devices send -------------------------------------------------------

    def send(self, device_id: str, event: dict[str, Any], *, dup: bool = False) -> Message:
        """Deliver one event payload as the broker would; returns the message."""
        body = {"ts": datetime.now(UTC).isoformat(), **event}
        message = Message(
            self.topics.device_events(device_id),
            json.dumps(body).encode(),
            1,
            False,
            self.broker.next_mid(),
            dup=dup,
        )
        self.ingest.on_messages([message])
        return message

    def event_id(self) -> str:
        return f"e{next(self._ids)}"

    def card(self, device_id: str, card_uid: str, **fields: Any) -> str:
        event_id = fields.pop("event_id", None) or self.event_id()
        dup = fields.pop("dup", False)
        body = {"event_id": event_id, "type": "card", "card_uid": card_uid, **fields}
        self.send(device_id, body, dup=dup)
        return event_id

    def temperature(self, device_id: str, celsius: float, **fields: Any) -> str:
        event_id = fields.pop("event_id", None) or self.event_id()
        body = {"event_id": event_id, "type": "temperature", "celsius": celsius, **fields}
        self.send(device_id, body)
        return event_id

    def frame(self, device_id: str, width: int, height: int, pixels: bytes) -> str:
        event_id = self.event_id()
        data = base64.b64encode(pixels).decode()
        body = {"event_id": event_id, "type": "thermal_frame", "width": width, "height": height}
        self.send(device_id, {**body, "celsius_f32le": data})
        return event_id

    def deliver(self, device_id: str, card_uid: str, event_id: str) -> FakeArrival:
        """A card through a third transport's `Arrival` (as serial readers deliver)."""
        index = self.roster.index
        device = index.device(device_id)
        assert device is not None
        door = index.door(device.door_id)
        assert door is not None
        arrival = FakeArrival()
        event = CardEvent(device_id, event_id, datetime.now(UTC), card_uid)
        self.ingest.deliver(arrival, event, device, door)
        return arrival

    # ---- what came back ------------------------------------------------------------

    def answers(self, device_id: str, event_id: str) -> list[str]:
        """`verdict/reason` of every decision sent for the event, in order."""
        return [
            f"{d['decision']}/{d['reason']}"
            for d in self.broker.decisions(device_id)
            if d["event_id"] == event_id
        ]

    def record(self, event_id: str) -> AccessRecord:
        (found,) = [r for r in self.journal.records if r.event_id == event_id]
        return found

    def acked(self, message_or_event: Message | str) -> int:
        if isinstance(message_or_event, Message):
            return sum(1 for m in self.broker.acked if m is message_or_event)
        wanted = message_or_event
        return sum(1 for m in self.broker.acked if json.loads(m.payload)["event_id"] == wanted)
