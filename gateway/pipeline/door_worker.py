"""One gateway worker: the MQTT session, the roster, the journal and the door desk."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.transports.mqtt import BrokerAddress, MqttClient
from gateway.domain.alerts import AlertKind
from gateway.domain.decisions import Decision, Verdict
from gateway.domain.partitions import DEFAULT_PARTITIONS, device_partition
from gateway.metrics import Counters
from gateway.pipeline.alert_relay import AlertRelay
from gateway.pipeline.alerting import Alerter
from gateway.pipeline.allowlists import AllowlistConfig
from gateway.pipeline.dedupe import Duplicates, SeenEvents
from gateway.pipeline.device_clocks import DeviceClocks
from gateway.pipeline.device_watch import DeviceWatch
from gateway.pipeline.doors import DoorDesk, DoorPolicy
from gateway.pipeline.gathering import GatheringWatch
from gateway.pipeline.ingest import Ingest
from gateway.pipeline.journal import Journal
from gateway.pipeline.offline import OfflineSupport, offline_support, presence_will
from gateway.pipeline.ownership import PartitionOwnership
from gateway.pipeline.partition_sessions import PartitionedMqtt
from gateway.pipeline.publisher import LATE_AFTER_S, Publisher
from gateway.pipeline.recent_decisions import remember_decisions
from gateway.pipeline.roster_state import RosterState
from gateway.pipeline.serial_reader_pool import SerialReaders, parse_osdp_keys
from gateway.pipeline.shared_occupancy import SharedOccupancy
from gateway.pipeline.signing import Ed25519CommandSigner
from gateway.pipeline.spool import DEFAULT_BOUND, Spool, left_spools
from gateway.pipeline.topics import Topics
from gateway.pipeline.visitor_qr import QrReader
from gateway.policy.occupancy import Occupancy
from gateway.policy.roster_index import RosterIndex
from gateway.store import access_log
from gateway.store import alerts as alert_store
from gateway.store import devices as device_store
from gateway.store import occupancy as occupancy_store
from gateway.store.db import create_pool

_LOGGER = logging.getLogger(__name__)

DEDUPE_HORIZON = timedelta(hours=24)
STATS_INTERVAL_S = 60.0
# How long a starting gateway waits for its spool while another process on the data dir
# looks into it or drains it as left behind (gateway/pipeline/spool.py, left_spools).
SPOOL_LOCK_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class Partitioning:
    """How a partitioned worker shares the campus (CAMPUSGATE_PARTITIONS and friends)."""

    partitions: int = DEFAULT_PARTITIONS
    lease_s: float = 5.0
    client_prefix: str = "campusgate-p"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    database_url: str
    broker: BrokerAddress
    topic_prefix: str
    policy: DoorPolicy
    client_id: str = "campusgate-gateway"
    # Scale-out (issue 14): None runs the whole campus on one session (`campusgate serve`);
    # set, the worker owns partitions by lease, one persistent MQTT session each.
    partitioning: Partitioning | None = None
    osdp_keys: str | None = None  # CAMPUSGATE_OSDP_KEYS, parsed when the serial readers start
    osdp_allow_insecure: bool = False  # CAMPUSGATE_OSDP_ALLOW_INSECURE: keyless readers run
    # Flow control (see devices/transports/mqtt.py): the broker sends at most this many
    # events before the gateway acknowledges them, i.e. before they are durable. Below the
    # journal's high-water mark in events, so a database outage stops the broker first.
    receive_maximum: int = 20_000
    journal_high_water: int = 50_000  # journal items (about two per event)
    mqtt_keepalive_s: int = 30
    late_after_s: float = LATE_AFTER_S
    # Signs every command (docs/protocol.md, "Signed commands"); None sends them unsigned.
    signing_key: Ed25519PrivateKey | None = None
    # Door allowlists for offline decisions (issue 13); None publishes none. Needs the key.
    allowlists: AllowlistConfig | None = None
    # The local spool (gateway/pipeline/spool.py): while PostgreSQL is away, decisions are
    # journaled to this file and sent at once. None: they wait for the database.
    spool_path: Path | None = None
    spool_bound: int = DEFAULT_BOUND  # items (CAMPUSGATE_SPOOL_MAX_ITEMS)


class Gateway:
    """Start, run and stop one worker; `counters` show what it did."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.counters = Counters()
        self.topics = Topics(config.topic_prefix)
        self._pool: asyncpg.Pool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.mqtt: MqttClient | None = None
        self.journal: Journal | None = None
        self.roster: RosterState | None = None
        self.desk: DoorDesk | None = None
        self.devices: DeviceWatch | None = None
        self.gathering: GatheringWatch | None = None
        self.relay: AlertRelay | None = None  # alerts the API's jobs stored, to MQTT
        self.shared: SharedOccupancy | None = None  # zone counts shared by the workers
        self.serial: SerialReaders | None = None
        self.offline: OfflineSupport | None = None
        self.spool: Spool | None = None
        self.ownership: PartitionOwnership | None = None
        self.signer = Ed25519CommandSigner(config.signing_key) if config.signing_key else None

    @property
    def pool(self) -> asyncpg.Pool | None:
        """The worker's connection pool (None before `start`), e.g. for a readiness probe."""
        return self._pool

    async def start(self) -> None:
        config = self.config
        self._stopping, self._tasks = False, []  # a stopped gateway may start again
        self._pool = await create_pool(config.database_url, min_size=2, max_size=6)
        async with self._pool.acquire() as conn:
            await access_log.ensure_partitions(conn, datetime.now(UTC))
            # A partitioned worker remembers a partition's decisions when it takes it.
            recent = (
                []
                if config.partitioning is not None
                else await access_log.recent_decisions(
                    conn, datetime.now(UTC) - DEDUPE_HORIZON, with_person=True
                )
            )
            # Who is inside now, from the log: the counts survive a restart.
            occupancy = Occupancy()
            occupancy.enter_all(
                await occupancy_store.inside_entries(
                    conn, datetime.now(UTC), config.policy.max_stay_h
                )
            )
            # Events queued while the gateway was down must not predate its last contact.
            last_contact = {
                device_id: last_seen
                for device_id, (_, last_seen, _) in (await device_store.device_states(conn)).items()
                if last_seen is not None
            }
            skewed = {
                alert.device: alert
                for alert in await alert_store.open_alerts(conn, AlertKind.CLOCK_SKEW)
                if alert.device
            }

        self.roster = RosterState(self._pool, config.database_url)
        await self.roster.start()
        # A duplicate gets the original decision, greeting included.
        seen = SeenEvents()
        index = self.roster.index
        now, clock = datetime.now(UTC), time.perf_counter()
        remember_decisions(seen, recent, index)

        if config.spool_path is not None:
            # Off the loop: another worker on this data dir may be looking into this
            # spool as left behind (a restart of every worker at once); wait for it.
            self.spool = await asyncio.to_thread(
                Spool, config.spool_path, bound=config.spool_bound, wait_s=SPOOL_LOCK_WAIT_S
            )
            # Decisions spooled before a crash are not in the log yet: a redelivery of one
            # (its ack lost with the process) is a repeat, answered as it was decided.
            _remember_spooled(seen, self.spool, index, now, clock)

        self.mqtt = self._client()
        publisher = Publisher(
            self.mqtt,
            self.topics,
            late_after_s=config.late_after_s,
            counters=self.counters,
            signer=self.signer,
        )
        self.journal = Journal(
            config.database_url,
            high_water=config.journal_high_water,
            on_pressure=self._pressure,
            counters=self.counters,
            spool=self.spool,
        )
        if config.spool_path is not None:
            await self._drain_left_spools(config.spool_path, seen, index, now, clock)
        alerter = Alerter(self.journal, publisher, self.counters)
        duplicates = Duplicates(seen, publisher, self.counters)
        self.journal.on_stall = alerter.database_stall
        self.devices = DeviceWatch(self._pool, self.journal, alerter, self.counters)
        await self.devices.start()
        self.shared = SharedOccupancy(config.database_url, self.roster, occupancy)
        self.desk = DoorDesk(
            roster=self.roster,
            journal=self.journal,
            publisher=publisher,
            alerter=alerter,
            duplicates=duplicates,
            occupancy=occupancy,
            policy=config.policy,
            counters=self.counters,
            shared=self.shared,
        )
        self.gathering = GatheringWatch(
            self._pool,
            self.roster,
            occupancy,
            alerter,
            max_stay_h=config.policy.max_stay_h,
            shared=self.shared,
        )
        await self.gathering.start()
        clocks = DeviceClocks(
            alerter,
            self.counters,
            max_late=timedelta(hours=config.policy.max_stay_h),
            last_contact=last_contact,
            open_alerts=skewed,
        )
        ingest = Ingest(
            topics=self.topics,
            roster=self.roster,
            desk=self.desk,
            devices=self.devices,
            clocks=clocks,
            duplicates=duplicates,
            publisher=publisher,
            counters=self.counters,
            qr=QrReader(self.signer.info.public_raw if self.signer else None, self.counters),
        )
        self.offline = self._offline_support(seen, occupancy, alerter)
        self.mqtt.set_handler(self.offline.route(ingest.on_messages))
        self.serial = SerialReaders(
            roster=self.roster,
            ingest=ingest,
            devices=self.devices,
            counters=self.counters,
            osdp_keys=parse_osdp_keys(config.osdp_keys),
            allow_insecure_osdp=config.osdp_allow_insecure,
        )
        self.journal.start()
        self.shared.start()
        self.desk.start()
        # The roster and the remembered decisions live as long as the process: keep them out
        # of the cyclic collector's full passes, which otherwise stall the loop for tens of ms.
        gc.freeze()
        await self.mqtt.connect()
        if isinstance(self.mqtt, PartitionedMqtt) and config.partitioning is not None:
            self.ownership = PartitionOwnership(
                pool=self._pool,
                worker=config.client_id,
                partitions=config.partitioning.partitions,
                lease_s=config.partitioning.lease_s,
                mqtt=self.mqtt,
                topics=self.topics,
                roster=self.roster,
                seen=seen,
                journal=self.journal,
                devices=self.devices,
                forget_devices=self.desk.forget,
                finish_claims=self.desk.finish_claims,
            )
            await self.ownership.start()
        await self.serial.start()
        self.offline.start()
        self.relay = AlertRelay(self._pool, publisher)
        self.relay.start()
        self._tasks.append(asyncio.create_task(self._stats_loop(), name="gateway-stats"))
        _LOGGER.info(
            "gateway %s up: broker %s (of %s), prefix %r, %d recent decisions remembered",
            config.client_id,
            self.mqtt.endpoint,
            config.broker,
            config.topic_prefix,
            len(recent),
        )

    def _announce_signing_key(self) -> None:
        # On every (re)connect, before any decision of this session: a broker restarted
        # without persistence has lost the retained key that terminals pin.
        if self.signer is not None and self.mqtt is not None:
            payload = self.signer.info.announcement()
            self.mqtt.publish(self.topics.signing_key, payload, qos=1, retain=True)
        if self.offline is not None:
            self.offline.on_connected()

    def _offline_support(
        self, seen: SeenEvents, occupancy: Occupancy, alerter: Alerter
    ) -> OfflineSupport:
        """Presence, allowlists and uploads (issue 13): gateway/pipeline/offline.py."""
        assert self.mqtt is not None and self.roster is not None and self._pool is not None
        roster = self.roster
        return offline_support(
            mqtt=self.mqtt,
            topics=self.topics,
            worker=self.config.client_id,
            index=lambda: roster.index,
            pool=self._pool,
            database_url=self.config.database_url,
            policy=self.config.policy,
            seen=seen,
            occupancy=occupancy,
            alerter=alerter,
            signer=self.signer,
            signing_key=self.config.signing_key,
            allowlists=self.config.allowlists,
            counters=self.counters,
        )

    def _client(self) -> MqttClient:
        """One session for the whole campus, or the worker's own plus one per partition."""
        config = self.config
        will = presence_will(self.topics, config.client_id)
        partitioning = config.partitioning
        if partitioning is None:
            subscriptions = [
                (self.topics.events, 1),
                (self.topics.states, 1),
                (self.topics.uploads, 1),
            ]
            return MqttClient(
                config.broker,
                client_id=config.client_id,
                clean_start=False,
                manual_ack=True,
                subscriptions=subscriptions,
                receive_maximum=config.receive_maximum,
                keepalive=config.mqtt_keepalive_s,
                on_connected=self._announce_signing_key,
                will=will,
            )
        roster = self.roster
        assert roster is not None

        def partition_of_device(device_id: str) -> int | None:
            device = roster.index.device(device_id)
            if device is None:
                return None
            return device_partition(device.door_id, device.id, partitioning.partitions)

        return PartitionedMqtt(
            config.broker,
            worker_id=config.client_id,
            topics=self.topics,
            client_prefix=partitioning.client_prefix,
            partition_of_device=partition_of_device,
            keepalive=config.mqtt_keepalive_s,
            # The journal's brake is shared by all sessions: each gets a slice of it.
            receive_maximum=max(100, config.receive_maximum // 16),
            will=will,
            on_connected=self._announce_signing_key,
        )

    def _pressure(self, high: bool) -> None:
        # Hold, never stop reading: the connection (keepalive, acks, a reconnect's CONNACK)
        # must survive back-pressure, or paho drops the acks and the broker redelivers.
        if self.mqtt is None or self._stopping:
            return
        if high:
            self.mqtt.hold()
        else:
            self.mqtt.release()

    async def _drain_left_spools(
        self, own: Path, seen: SeenEvents, index: RosterIndex, now: datetime, clock: float
    ) -> None:
        """Drain the spools of workers of another id that no process holds, before start."""
        assert self.journal is not None
        for left in left_spools(own):
            try:
                _LOGGER.warning(
                    "journal spool %s (another worker id) holds %d items no worker holds: "
                    "draining them into the log",
                    left.file.path,
                    left.items,
                )
                _remember_spooled(seen, left, index, now, clock)
                await self.journal.drain_left(left)
            finally:
                left.close()

    async def stop(self) -> None:
        """Stop taking events, finish what was taken, close everything."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self.ownership is not None:  # take no partition while stopping
            await self.ownership.stop()
        if self.gathering is not None:  # it raises alerts: stop it before the journal
            await self.gathering.stop()
        if self.relay is not None:  # it publishes: stop it before the MQTT client closes
            await self.relay.stop()
        if self.serial is not None:
            await self.serial.stop()
        if self.mqtt is not None:
            self.mqtt.hold()
        await self._stop_offline()
        if self.desk is not None:
            await self.desk.finish_claims()  # each within its deadline: then into the journal
        self._close_windows()
        if self.journal is not None:
            await self.journal.stop()
        if self.spool is not None:
            self.spool.close()
        await self._close_mqtt()
        if self.desk is not None:
            await self.desk.stop()
        for part in (self.devices, self.shared, self.roster):
            if part is not None:
                await part.stop()
        if self._pool is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._pool.close(), 5)
        _LOGGER.info("gateway %s stopped: %s", self.config.client_id, self.counters.snapshot())

    def _close_windows(self) -> None:
        if self.desk is None:
            return
        if self.ownership is not None and self.roster is not None:
            # Another worker takes these doors within a second: it gets the waiting cards
            # again from the broker (unacknowledged) and pairs them with their readings.
            let_go = self.desk.forget({d.id for d in self.roster.index.devices()})
            if let_go:
                _LOGGER.info("left %d cards waiting for a temperature to the next owner", let_go)
            return
        closed = self.desk.close_windows()
        if closed:
            _LOGGER.info("denied %d cards still waiting for a temperature", closed)

    async def _stop_offline(self) -> None:
        if self.offline is None:
            return
        await self.offline.stop()
        if self.config.partitioning is not None and self.mqtt is not None:
            # Worker ids are per process: clear this one's presence rather than leave a
            # retained `false` behind for ever (docs/protocol.md, Offline decisions).
            self.mqtt.publish(
                self.topics.gateway_state(self.config.client_id), b"", qos=1, retain=True
            )

    async def _close_mqtt(self) -> None:
        if self.mqtt is not None:
            # Let the follow-ups' publishes and acks reach the broker before saying goodbye.
            await asyncio.sleep(0.05)
            await self.mqtt.close()
        if self.ownership is not None:
            # Sessions closed, everything taken acknowledged: others may take over at once.
            await self.ownership.release_all()

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            _LOGGER.info("gateway %s: %s", self.config.client_id, self.counters.snapshot())
            age = self.roster.age_s() if self.roster is not None else 0.0
            if self.journal is not None and self.journal.spooling and self.spool is not None:
                _LOGGER.warning(
                    "gateway %s: the database is away; %d items in the local spool, deciding "
                    "on a roster %.0f s old",
                    self.config.client_id,
                    self.spool.items,
                    age,
                )


def _remember_spooled(
    seen: SeenEvents, spool: Spool, index: RosterIndex, now: datetime, clock: float
) -> None:
    """Remember the card decisions still in the spool, like those of the log."""
    for record in spool.records():
        if record.verdict not in (Verdict.ADMIT, Verdict.DENY) or record.reason is None:
            continue
        person = index.person(record.person_id) if record.person_id else None
        decision = Decision.recorded(
            record.event_id, record.verdict, record.reason, person.name if person else None
        )
        received = record.gateway_ts or record.received_at
        seen.remember(
            (record.device_id, record.event_id),
            decision,
            clock - (now - received).total_seconds(),
        )
