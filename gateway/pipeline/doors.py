"""The per-event path: card, temperature, frame and door events in, decisions out.

Nothing here waits on I/O: the roster is an in-memory index, pairing and
occupancy are in memory, and everything durable goes into the open journal
batch, whose follow-ups answer and acknowledge the event through its `Arrival`
(whatever transport it came by) once the batch is committed. Repeats never get
here (ingest answers them); thermal frames are read by `ThermalFrames` and come
back as readings through `take_reading`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from devices.codecs.thermal_estimator import Calibration
from gateway.domain.alerts import AlertKind
from gateway.domain.campus import AccessRecord
from gateway.domain.decisions import Decision, Verdict
from gateway.domain.events import (
    CardEvent,
    Direction,
    DoorEvent,
    DoorState,
    TemperatureEvent,
    ThermalFrameEvent,
)
from gateway.domain.health import HealthRecord
from gateway.domain.roster import Device, Door
from gateway.metrics import Counters
from gateway.pipeline.alerting import Alerter
from gateway.pipeline.arrival import Arrival
from gateway.pipeline.dedupe import Duplicates, EventKey
from gateway.pipeline.journal import Batch, Journal
from gateway.pipeline.publisher import Publisher
from gateway.pipeline.roster_state import RosterState
from gateway.pipeline.shared_occupancy import SharedOccupancy
from gateway.pipeline.thermal_frames import ThermalDesk, ThermalFrames
from gateway.policy.decide import (
    Outcome,
    decide,
    is_fever_reading,
    is_valid_reading,
    resolve_direction,
    to_decision,
)
from gateway.policy.occupancy import Occupancy
from gateway.policy.pairing import PairingBook
from gateway.store.zone_counts import Claim

_LOGGER = logging.getLogger(__name__)

DOOR_ALERTS = {
    DoorState.FORCED: AlertKind.DOOR_FORCED,
    DoorState.HELD_OPEN: AlertKind.DOOR_HELD_OPEN,
}


@dataclass(frozen=True, slots=True)
class DoorPolicy:
    """The settings a decision depends on."""

    tz: ZoneInfo
    fever_threshold_c: float
    temperature_window_s: float
    # The longest stay assumed without an exit outside dormitories (CAMPUSGATE_TRACE_MAX_STAY_H);
    # see gateway/domain/presence.py.
    max_stay_h: float = 12.0
    # Per thermal camera (device id); cameras not named get the default for their resolution.
    thermal_calibrations: Mapping[str, Calibration] = field(default_factory=dict)


@dataclass(slots=True)
class WaitingCard:
    arrival: Arrival
    event: CardEvent
    device: Device
    door: Door
    direction: Direction
    companions: list[tuple[AccessRecord, Arrival, EventKey]] = field(default_factory=list)
    claim: Claim | None = None  # its place in a zone with a capacity, shared by the workers


class DoorDesk:
    """Decides card events and handles the other events of the doors."""

    def __init__(
        self,
        *,
        roster: RosterState,
        journal: Journal,
        publisher: Publisher,
        alerter: Alerter,
        duplicates: Duplicates,
        occupancy: Occupancy,
        policy: DoorPolicy,
        counters: Counters,
        shared: SharedOccupancy | None = None,
    ) -> None:
        self._roster = roster
        # Zone counts shared with the other workers (None: this worker's own count only).
        self._shared = shared
        self._claims: dict[asyncio.Task[None], str] = {}  # claim under way -> its device
        self._journal = journal
        self._publisher = publisher
        self._alerter = alerter
        self._duplicates = duplicates
        self._occupancy = occupancy
        self._policy = policy
        self._counters = counters
        self._book = PairingBook(window_s=policy.temperature_window_s)
        self._waiting: dict[EventKey, WaitingCard] = {}
        # Zones in capacity mode `alert` whose zone_full alert is raised already: one alert
        # per crossing, not one per person, until the count is below capacity again.
        self._full_alerted: set[str] = set()
        self._thermal = ThermalDesk(
            window_s=policy.temperature_window_s, calibrations=policy.thermal_calibrations
        )
        self._frames = ThermalFrames(
            self._thermal,
            self,
            alerter,
            counters,
            window_s=policy.temperature_window_s,
        )
        self._expiry_wake = asyncio.Event()
        self._expiry_task: asyncio.Task[None] | None = None

    # ---- lifecycle --------------------------------------------------------

    def start(self) -> None:
        self._expiry_task = asyncio.create_task(self._expire_loop(), name="pairing-expiry")

    async def stop(self) -> None:
        if self._expiry_task is not None:
            self._expiry_task.cancel()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def occupancy(self) -> Occupancy:
        return self._occupancy

    def _needs_reading(self, door: Door) -> bool:
        """The door requires a temperature, itself or under a response level."""
        if door.requires_temperature:
            return True
        return self._roster.index.zone_rules(door.zone_id).require_temperature

    # ---- card ---------------------------------------------------------------

    def on_card(self, arrival: Arrival, event: CardEvent, device: Device, door: Door) -> None:
        key = (device.id, event.event_id)
        direction = resolve_direction(event.direction, door)
        outcome = self._decide(door, event.card_uid, direction, event.celsius, window_open=True)
        celsius = event.celsius
        if outcome.verdict is Verdict.PENDING and self._window_passed(arrival):
            # Redelivered after a crash, its window long gone: a reading now is someone else's.
            self._counters.windows_passed_on_redelivery += 1
            outcome = self._decide(door, event.card_uid, direction, None, window_open=False)
        if outcome.verdict is Verdict.PENDING:
            # A redelivered card waits only for what is left of its window.
            arrived = time.monotonic() - _redelivered_age(arrival)
            paired = self._book.offer_card(door.id, key, event.card_uid, arrived)
            if paired is None:
                self._waiting[key] = WaitingCard(arrival, event, device, door, direction)
                if not arrival.redelivered:  # the first delivery sent the one `pending`
                    arrival.reply(to_decision(event.event_id, outcome))
                self._expiry_wake.set()
                return
            celsius = paired
            outcome = self._decide(door, event.card_uid, direction, celsius, window_open=True)
        self._conclude(WaitingCard(arrival, event, device, door, direction), outcome, celsius)

    def _window_passed(self, arrival: Arrival) -> bool:
        """A card the broker delivers again (the gateway that took it died unanswered) whose
        temperature window passed, by its device's clock, before this delivery.

        Only redeliveries are judged by the device's clock: a live card from a terminal
        whose clock runs behind must still wait for its reading.
        """
        return _redelivered_age(arrival) >= self._policy.temperature_window_s

    def _decide(
        self,
        door: Door,
        card_uid: str,
        direction: Direction,
        celsius: float | None,
        *,
        window_open: bool,
        occupancy: int | None = None,
    ) -> Outcome:
        if occupancy is None:
            occupancy = self._zone_count(door.zone_id, direction)
        return decide(
            self._roster.index,
            door=door,
            card_uid=card_uid,
            direction=direction,
            now=datetime.now(UTC),
            tz=self._policy.tz,
            celsius=celsius,
            fever_threshold_c=self._policy.fever_threshold_c,
            occupancy=occupancy,
            temperature_window_open=window_open,
        )

    def _zone_count(self, zone_id: str, direction: Direction) -> int:
        """The count a decision is made on. An entry whose place is claimed in the store
        is decided as if the zone had room: the claim then settles it (`_conclude`)."""
        shared = self._shared
        if shared is None:
            return self._occupancy.count(zone_id)
        if (
            direction is Direction.IN
            and shared.connected
            and shared.capacity(zone_id)[0] is not None
        ):
            return 0
        return shared.count(zone_id)

    # ---- shared zone counts (gateway/pipeline/shared_occupancy.py) -------------------

    def _conclude(self, card: WaitingCard, outcome: Outcome, celsius: float | None) -> None:
        """Finalize; an admitted entry into a zone with a capacity claims its place first."""
        shared = self._shared
        if (
            shared is None
            or not outcome.admitted
            or outcome.person is None
            or card.direction is not Direction.IN
            or shared.capacity(card.door.zone_id)[0] is None
        ):
            self._finalize(card, outcome, celsius)
            return
        task = asyncio.create_task(self._claim_then_finalize(shared, card, outcome, celsius))
        self._claims[task] = card.device.id
        task.add_done_callback(self._claim_done)

    def _claim_done(self, task: asyncio.Task[None]) -> None:
        self._claims.pop(task, None)

    async def _claim_then_finalize(
        self, shared: SharedOccupancy, card: WaitingCard, outcome: Outcome, celsius: float | None
    ) -> None:
        assert outcome.person is not None
        zone_id = card.door.zone_id
        try:
            card.claim = await shared.claim(zone_id, outcome.person.id, datetime.now(UTC))
            occupancy = _occupancy_for(card.claim, shared.count(zone_id))
            capacity = shared.capacity(zone_id)[0]
            if capacity is not None and occupancy < capacity:
                self._full_alerted.discard(zone_id)  # room again: a new crossing alerts anew
            final = self._decide(
                card.door,
                card.event.card_uid,
                card.direction,
                celsius,
                window_open=True,
                occupancy=occupancy,
            )
            claim = card.claim
            if claim is not None and claim.taken and not claim.held and not final.admitted:
                # Refused for another reason meanwhile (a roster change): give the place back.
                # A held place was theirs before this swipe: they are still inside.
                shared.passed(
                    zone_id, outcome.person.id, Direction.OUT, datetime.now(UTC), claimed=False
                )
                card.claim = None
            self._finalize(card, final, celsius)
        except Exception:  # the card must still be answered: decide it on the own count
            _LOGGER.exception("claiming a place for %s failed", card.event.event_id)
            card.claim = None
            self._finalize(card, outcome, celsius)

    async def finish_claims(self, device_ids: set[str] | None = None) -> None:
        """Wait for the claims under way (each within its deadline) to be decided; only
        those of cards at `device_ids` if given (a partition handed over)."""
        while tasks := [
            t for t, d in self._claims.items() if device_ids is None or d in device_ids
        ]:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _finalize(self, card: WaitingCard, outcome: Outcome, celsius: float | None) -> None:
        """Decide a card for good: its log row, its alerts, a health change, then the answer."""
        decision = to_decision(card.event.event_id, outcome)
        now = datetime.now(UTC)
        person_id = outcome.person.id if outcome.person else None
        batch = self._journal.current()
        decided = self._log_decision(card, decision, person_id, celsius, now, batch)
        self._raise_alerts(card, outcome, decision, person_id, celsius, now)
        self._change_health(outcome, person_id, celsius, card.door, now, batch)
        if decision.verdict is Verdict.ADMIT:
            self._count_in(card, person_id, now)
        # The enums are str subclasses (str hashing): the keys print as their values.
        self._counters.decide(decision.verdict, decision.reason)
        self._answer_when_durable(card, decision, decided, batch)
        self._journal.kick()

    def _log_decision(
        self,
        card: WaitingCard,
        decision: Decision,
        person_id: str | None,
        celsius: float | None,
        now: datetime,
        batch: Batch,
    ) -> AccessRecord:
        """The card's access-log row, and the readings that completed it, into the batch."""
        decided = _record(
            card.arrival,
            card.event,
            card.door,
            person_id=person_id,
            card_uid=card.event.card_uid,
            direction=card.direction,
            celsius=celsius,
            verdict=decision.verdict,
            reason=decision.reason,
            decided_at=now,
            latency_us=int((time.perf_counter() - card.arrival.started) * 1_000_000),
        )
        batch.records.append(decided)
        for record, _, _ in card.companions:
            batch.records.append(record)
        return decided

    def _raise_alerts(
        self,
        card: WaitingCard,
        outcome: Outcome,
        decision: Decision,
        person_id: str | None,
        celsius: float | None,
        now: datetime,
    ) -> None:
        door = card.door
        for kind in self._throttle_zone_full(outcome, door, card.claim):
            detail: dict[str, object] = {
                "card_uid": card.event.card_uid,
                "reason": decision.reason.value,
            }
            if kind is AlertKind.ZONE_FULL:
                rules = self._roster.index.zone_rules(door.zone_id)
                detail.update(
                    occupancy=self._count_for_alert(card, door.zone_id),
                    capacity=rules.capacity,
                    mode=rules.capacity_mode.value,
                )
                if card.claim is not None:  # one open zone_full per zone and crossing
                    detail["crossing"] = card.claim.crossing
            if kind in (AlertKind.FEVER, AlertKind.TEMPERATURE_INVALID) and celsius is not None:
                detail["celsius"] = celsius
            if kind is AlertKind.ISOLATION_BREACH and person_id is not None:
                detail.update(self._breach_detail(person_id, card.direction))
            self._alerter.raise_alert(
                kind,
                now,
                door=door.id,
                zone=door.zone_id,
                device=card.device.id,
                person=person_id,
                detail=detail,
            )

    def _change_health(
        self,
        outcome: Outcome,
        person_id: str | None,
        celsius: float | None,
        door: Door,
        now: datetime,
        batch: Batch,
    ) -> None:
        """A status the decision sets (a fever's hold): at the doors at once, stored with it."""
        if outcome.health_change is None or person_id is None:
            return
        record = HealthRecord(
            person_id=person_id,
            status=outcome.health_change,
            since=now,
            reason=f"fever {celsius:.1f} C at door {door.id}"
            if celsius is not None
            else "set at the door",
            set_by="gateway",
        )
        self._roster.apply_health(record)
        batch.health.append((record, "gateway"))

    def _count_in(self, card: WaitingCard, person_id: str | None, now: datetime) -> None:
        """An admit passes the door: occupancy, the zone_full throttle and tailgating see it."""
        door = card.door
        count = self._occupancy.passed(door.zone_id, card.direction, person_id, now)
        if self._shared is not None:
            if person_id is not None:
                self._shared.passed(
                    door.zone_id, person_id, card.direction, now, claimed=card.claim is not None
                )
            count = self._shared.count(door.zone_id)
        if door.zone_id in self._full_alerted:
            capacity = self._roster.index.zone_rules(door.zone_id).capacity
            if capacity is None or count < capacity:
                self._full_alerted.discard(door.zone_id)
        self._thermal.admitted(door.id, time.monotonic())  # tailgating counts them

    def _answer_when_durable(
        self, card: WaitingCard, decision: Decision, decided: AccessRecord, batch: Batch
    ) -> None:
        """Once the row is stored: answer, acknowledge, settle repeats; never if it was refused."""
        key = (card.device.id, card.event.event_id)
        companions = card.companions
        arrival = card.arrival
        arrived = arrival.started
        latency = self._counters.decision_latency

        # A redelivery (the worker that took it died) is as old as its device says.
        first_received = arrived - _redelivered_age(arrival)

        def publish_and_ack() -> None:
            # Judged late now, when it is sent, against the card event's first receipt.
            arrival.reply(self._publisher.judged(decision, first_received))
            latency.observe(time.perf_counter() - arrived)  # receipt -> durable and published
            arrival.ack()
            self._duplicates.settle(key, decision, arrived)
            for _, companion, companion_key in companions:
                companion.ack()
                self._duplicates.settle(companion_key, None)

        def refused() -> None:
            # Its row could not be stored: no decision goes out (the device times out and
            # the door stays shut), and the message is acknowledged, since a redelivery
            # would be refused the same way.
            _LOGGER.error(
                "event %s of %s: its log row was refused, so its %s is not sent",
                card.event.event_id,
                card.device.id,
                decision.verdict.value,
            )
            arrival.ack()
            self._duplicates.settle(key, None)
            for _, companion, companion_key in companions:
                companion.ack()
                self._duplicates.settle(companion_key, None)

        def fenced() -> None:
            # Its partition's lease was another worker's by the time of the write: the
            # broker gives that worker the event again, unacknowledged, and it decides.
            self._duplicates.abandon(key)
            for _, _, companion_key in companions:
                self._duplicates.abandon(companion_key)

        batch.follow(publish_and_ack, needs=(decided,), refused=refused, fenced=fenced)

    def _count_for_alert(self, card: WaitingCard, zone_id: str) -> int:
        """The zone's count when the card was decided (before its own passage)."""
        if card.claim is not None:
            return card.claim.before
        return (
            self._shared.count(zone_id)
            if self._shared is not None
            else self._occupancy.count(zone_id)
        )

    def _breach_detail(self, person_id: str, direction: Direction) -> dict[str, object]:
        """Which way a held person went and who looks after them (never their status)."""
        record = self._roster.index.health(person_id)
        caretaker = record.caretaker_id if record is not None else None
        return {"direction": direction.value, "caretaker": caretaker}

    def _throttle_zone_full(
        self, outcome: Outcome, door: Door, claim: Claim | None
    ) -> tuple[AlertKind, ...]:
        """The outcome's alerts, less an admitted zone_full already raised for this crossing.

        With a shared count, the one entry that went past capacity raises it, whichever
        worker decided it (the store keeps one open per crossing in any case).
        """
        if not outcome.admitted or AlertKind.ZONE_FULL not in outcome.alerts:
            return outcome.alerts
        if claim is not None:
            first = claim.before == self._roster.index.zone_rules(door.zone_id).capacity
            if first:
                return outcome.alerts
            return tuple(k for k in outcome.alerts if k is not AlertKind.ZONE_FULL)
        if door.zone_id in self._full_alerted:
            return tuple(k for k in outcome.alerts if k is not AlertKind.ZONE_FULL)
        self._full_alerted.add(door.zone_id)
        return outcome.alerts

    # ---- readings (temperature scanners, thermal cameras) --------------------

    def on_temperature(
        self, arrival: Arrival, event: TemperatureEvent, device: Device, door: Door
    ) -> None:
        self.take_reading(arrival, event, device, door, event.celsius, {}, time.monotonic())

    def on_thermal_frame(
        self, arrival: Arrival, event: ThermalFrameEvent, device: Device, door: Door
    ) -> None:
        """Read off the loop (ThermalFrames); the nearest face comes back as a reading."""
        self._frames.on_frame(arrival, event, device, door)

    def take_reading(
        self,
        arrival: Arrival,
        event: TemperatureEvent | ThermalFrameEvent,
        device: Device,
        door: Door,
        celsius: float | None,
        detail: dict[str, object],
        now: float,
    ) -> None:
        """A reading at `door` (None: a frame with no face): pair it with a card, or log it."""
        key = (device.id, event.event_id)
        if celsius is None:
            self._journal_plain(
                self._reading_record(arrival, event, door, None, detail), arrival, key
            )
            return
        paired_key = None
        if self._needs_reading(door):
            paired_key = self._book.offer_temperature(door.id, celsius, event.card_uid, now)
            if paired_key is None:
                self._expiry_wake.set()  # the reading now waits: its deadline may be the next one
            else:
                detail["paired_event_id"] = paired_key[1]
        record = self._reading_record(arrival, event, door, celsius, detail)
        self._settle_reading(record, arrival, key, paired_key, celsius, door, device.id)

    def _reading_record(
        self,
        arrival: Arrival,
        event: TemperatureEvent | ThermalFrameEvent,
        door: Door,
        celsius: float | None,
        detail: dict[str, object],
    ) -> AccessRecord:
        return _record(
            arrival,
            event,
            door,
            person_id=self._holder_id(event.card_uid),
            card_uid=event.card_uid,
            celsius=celsius,
            detail=detail,
        )

    def _holder_id(self, card_uid: str | None) -> str | None:
        """The person holding the card a reading was bound to, if the roster knows it."""
        card = self._roster.index.card(card_uid) if card_uid else None
        return card.person_id if card else None

    def _settle_reading(
        self,
        record: AccessRecord,
        arrival: Arrival,
        key: EventKey,
        paired_key: EventKey | None,
        celsius: float,
        door: Door,
        device_id: str,
    ) -> None:
        """Decide the card a reading completed, or log the reading to wait or stand alone."""
        waiting = self._waiting.pop(paired_key, None) if paired_key else None
        if waiting is not None:
            # The reading and the card it completes become durable together.
            waiting.companions.append((record, arrival, key))
            outcome = self._decide(
                waiting.door, waiting.event.card_uid, waiting.direction, celsius, window_open=True
            )
            self._conclude(waiting, outcome, celsius)
            return
        if not self._needs_reading(door):
            self.alert_unpaired_reading(celsius, door, device_id)
        self._journal_plain(record, arrival, key)

    def alert_unpaired_reading(self, celsius: float, door: Door, device_id: str | None) -> None:
        """A fever reading no card claimed: someone with a fever stood at the door."""
        if is_valid_reading(celsius) and is_fever_reading(celsius, self._policy.fever_threshold_c):
            self._alerter.raise_alert(
                AlertKind.FEVER,
                datetime.now(UTC),
                door=door.id,
                zone=door.zone_id,
                device=device_id,
                detail={"celsius": celsius, "paired": False},
            )

    def _journal_plain(self, record: AccessRecord, arrival: Arrival, key: EventKey) -> None:
        batch = self._journal.current()
        batch.records.append(record)

        def ack() -> None:
            arrival.ack()
            self._duplicates.settle(key, None)

        # Acknowledged even if refused (a redelivery would be refused the same way); not
        # if fenced off: the partition's new owner gets it again and logs it.
        batch.follow(
            ack, needs=(record,), refused=ack, fenced=lambda: self._duplicates.abandon(key)
        )
        self._journal.kick()

    # ---- door states ------------------------------------------------------------

    def on_door(self, arrival: Arrival, event: DoorEvent, device: Device, door: Door) -> None:
        key = (device.id, event.event_id)
        kind = DOOR_ALERTS.get(event.state)
        if kind is not None:
            self._alerter.raise_alert(
                kind,
                datetime.now(UTC),
                door=door.id,
                zone=door.zone_id,
                device=device.id,
                detail={"state": event.state.value},
            )
        record = _record(arrival, event, door, detail={"state": event.state.value})
        self._journal_plain(record, arrival, key)

    # ---- the temperature window ---------------------------------------------

    async def _expire_loop(self) -> None:
        while True:
            deadline = self._book.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._expiry_wake.wait(), timeout)
            self._expiry_wake.clear()
            self.expire(time.monotonic())

    def close_windows(self) -> int:
        """Deny every card still waiting for a reading, as if its window had passed.

        Called when the gateway stops: a waiting card left unacknowledged would come
        back from the broker after the restart and take the reading of whoever is at
        the door then. The person gets "please measure again" and swipes again.
        """
        keys = list(self._waiting)
        for key in keys:
            self._book.cancel_card(key)
        self._deny_without_reading(keys)
        return len(keys)

    def forget(self, device_ids: set[str]) -> int:
        """Let go of the cards waiting at these devices, undecided and unacknowledged: their
        partition went to another worker (issue 14), which gets them again from the broker
        and pairs them there. Deciding them here too would answer them twice."""
        keys = [key for key in self._waiting if key[0] in device_ids]
        for key in keys:
            self._book.cancel_card(key)
            del self._waiting[key]
        # Cards whose place is being claimed are let go too: a place claimed without its
        # log row is dropped by the reconciliation with the access log (docs/architecture.md).
        claims = [t for t, d in self._claims.items() if d in device_ids]
        for task in claims:
            task.cancel()
        return len(keys) + len(claims)

    def expire(self, now: float) -> None:
        """Deny the cards whose window passed; alert unpaired fever readings."""
        cards, readings = self._book.expire(now)
        self._deny_without_reading(cards)
        index = self._roster.index
        for reading in readings:
            door = index.door(reading.door_id)
            if door is not None:
                self.alert_unpaired_reading(reading.celsius, door, None)
        if cards and _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("denied %d cards with no temperature within the window", len(cards))

    def _deny_without_reading(self, cards: list[EventKey]) -> None:
        for key in cards:
            waiting = self._waiting.pop(key, None)
            if waiting is None:
                continue
            outcome = self._decide(
                waiting.door, waiting.event.card_uid, waiting.direction, None, window_open=False
            )
            if outcome.verdict is Verdict.PENDING:  # the policy must not leave it waiting now
                _LOGGER.error("policy returned pending after the window for %s", key)
                continue
            self._conclude(waiting, outcome, None)


def _occupancy_for(claim: Claim | None, known: int) -> int:
    """The count an entry is decided on after its claim (`known`: the worker's own view,
    when the claim was not made). Someone who held a place already is counted in it: the
    zone is decided without them, as they keep their place (entering twice is one person)."""
    if claim is None:
        return known
    return max(claim.before - 1, 0) if claim.held else claim.before


def _redelivered_age(arrival: Arrival) -> float:
    """Seconds since a redelivered event happened, by its device's clock; 0 otherwise."""
    if not arrival.redelivered or arrival.at is None:
        return 0.0
    return max(0.0, (arrival.received_at - arrival.at).total_seconds())


def _record(
    arrival: Arrival,
    event: CardEvent | TemperatureEvent | ThermalFrameEvent | DoorEvent,
    door: Door,
    **fields: object,
) -> AccessRecord:
    """The access-log row of an event at `door`; `fields` are what its type adds."""
    return AccessRecord(
        device_id=event.device_id,
        event_id=event.event_id,
        type=event.type,
        device_ts=event.ts,
        received_at=arrival.at if arrival.at is not None else arrival.received_at,
        gateway_ts=arrival.received_at,
        door_id=door.id,
        zone_id=door.zone_id,
        **fields,  # type: ignore[arg-type]
    )
