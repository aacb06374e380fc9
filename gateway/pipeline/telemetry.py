"""A worker's /metrics, /healthz and /readyz, read from the running gateway at request time.

The door path only bumps plain counters (gateway/metrics.py); this module turns the
gateway's counters and state into Prometheus metric families when scraped, in a
registry of the worker's own (several gateways in one process stay apart).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from gateway.observe.status_server import Handler, Request, Response, StatusServer, bearer_ok
from gateway.observe.store_gauges import TTL_S as STORE_TTL_S
from gateway.observe.store_gauges import StoreGauges, devices_family
from gateway.pipeline.door_worker import Gateway
from gateway.store.db import acquire, ping

PING_DEADLINE_S = 2.0
PING_CACHE_S = 1.0  # probes in a burst share one database round trip


class WorkerCollector(Collector):
    """The gateway's counters and state as metric families, read at scrape time."""

    def __init__(self, gateway: Gateway, store: StoreGauges) -> None:
        self._gateway = gateway
        self._store = store

    def collect(self) -> Iterator[Metric]:
        gw = self._gateway
        c = gw.counters
        info = GaugeMetricFamily(
            "campusgate_worker_info",
            "This worker's MQTT client id and topic prefix (always 1)",
            labels=["client_id", "topic_prefix"],
        )
        info.add_metric([gw.config.client_id, gw.config.topic_prefix], 1)
        yield info
        yield _counter(
            "campusgate_events_received", "Events received (MQTT and serial)", c.received
        )
        rejected = CounterMetricFamily(
            "campusgate_events_rejected", "Events rejected, by cause", labels=["cause"]
        )
        for cause, n in sorted(c.rejected_by_cause.items()):
            rejected.add_metric([cause], n)
        yield rejected
        qr_invalid = CounterMetricFamily(
            "campusgate_qr_invalid",
            "Visitor QR tokens that did not verify (decided as unknown cards), by cause",
            labels=["cause"],
        )
        for cause, n in sorted(c.qr_invalid.items()):
            qr_invalid.add_metric([cause], n)
        yield qr_invalid
        yield _counter(
            "campusgate_events_duplicate", "Repeated events answered from memory", c.duplicate
        )
        yield _counter(
            "campusgate_events_redelivered",
            "Broker redeliveries of events already answered (acknowledged only)",
            c.redelivered,
        )
        yield _counter(
            "campusgate_events_unknown_device", "Events from unregistered devices", c.unknown_device
        )
        yield _counter(
            "campusgate_events_device_time_refused",
            "Events whose device time was implausible (logged at receipt time)",
            c.device_time_refused,
        )
        decisions = CounterMetricFamily(
            "campusgate_decisions",
            "Final door decisions, by verdict and reason",
            labels=["verdict", "reason"],
        )
        for (verdict, reason), n in sorted(c.decided_by_reason.items()):
            decisions.add_metric([str(verdict), str(reason)], n)
        yield decisions
        yield _counter(
            "campusgate_decisions_late",
            "Final decisions sent too late to unlock (late=true)",
            c.late,
        )
        hist = c.decision_latency
        yield HistogramMetricFamily(
            "campusgate_decision_latency_seconds",
            "Card event receipt to its final decision durable and published",
            buckets=hist.cumulative(),
            sum_value=hist.sum,
        )
        yield _counter(
            "campusgate_access_records_logged", "Access-log rows written durably", c.logged
        )
        yield _counter(
            "campusgate_access_records_fenced",
            "Access-log rows left out: their partition's lease was another worker's by then",
            c.fenced,
        )
        yield _counter("campusgate_alerts_raised", "Alerts raised by this worker", c.alerts)
        yield from self._journal()
        yield from self._spool()
        yield from self._pipeline_state()
        yield from self._store.collect()

    def _journal(self) -> Iterator[Metric]:
        journal = self._gateway.journal
        if journal is None:
            return
        yield GaugeMetricFamily(
            "campusgate_journal_queue_depth",
            "Journal items (log rows, alerts, states, follow-ups) not yet written",
            value=journal.backlog,
        )
        yield GaugeMetricFamily(
            "campusgate_journal_write_lag_seconds",
            "How long the oldest item not yet written has waited",
            value=journal.write_lag(),
        )
        yield _counter("campusgate_journal_flushes", "Journal batches committed", journal.flushes)
        yield _counter(
            "campusgate_journal_write_failures",
            "Journal writes that failed (retried or salvaged)",
            journal.failures,
        )
        yield _counter(
            "campusgate_journal_stalls", "Database stalls the journal went through", journal.stalls
        )
        yield _counter(
            "campusgate_journal_dropped",
            "Journal items the database refused (dropped after salvage)",
            journal.dropped,
        )

    def _spool(self) -> Iterator[Metric]:
        spool = self._gateway.spool
        journal = self._gateway.journal
        if spool is None:
            return
        yield GaugeMetricFamily(
            "campusgate_spool_items",
            "Journal items held in the local spool, not yet in PostgreSQL",
            value=spool.items,
        )
        yield GaugeMetricFamily(
            "campusgate_spool_bound_items",
            "The local spool's bound (CAMPUSGATE_SPOOL_MAX_ITEMS); at it, doors wait again",
            value=spool.bound,
        )
        yield GaugeMetricFamily(
            "campusgate_spool_active",
            "1 while decisions are journaled to the local spool (the database away or draining)",
            value=1 if journal is not None and journal.spooling else 0,
        )
        yield _counter(
            "campusgate_spool_spooled_items", "Items journaled to the spool", spool.spooled
        )
        yield _counter(
            "campusgate_spool_drained_items", "Spooled items drained into PostgreSQL", spool.drained
        )

    def _pipeline_state(self) -> Iterator[Metric]:
        gw = self._gateway
        if gw.desk is not None:
            yield GaugeMetricFamily(
                "campusgate_pairing_waiting",
                "Card events waiting for a temperature reading",
                value=gw.desk.waiting,
            )
        if gw.devices is not None:
            yield devices_family(*gw.devices.presence())
        if gw.roster is not None:
            yield _counter(
                "campusgate_roster_reloads", "Full roster loads since start", gw.roster.reloads
            )
            yield GaugeMetricFamily(
                "campusgate_roster_age_seconds",
                "How old the roster decisions are made on may be: 0 while changes reach it",
                value=gw.roster.age_s(),
            )
        mqtt = gw.mqtt
        if mqtt is not None:
            yield GaugeMetricFamily(
                "campusgate_mqtt_connected",
                "1 while the MQTT session is connected",
                value=1 if mqtt.is_connected else 0,
            )
            yield _counter(
                "campusgate_mqtt_connects", "Successful MQTT connections (CONNACK)", mqtt.connects
            )
            yield _counter(
                "campusgate_mqtt_reconnects",
                "MQTT reconnections after a lost connection",
                mqtt.reconnects,
            )
            yield _counter(
                "campusgate_mqtt_broker_moves",
                "Moves to another node of a clustered broker (CAMPUSGATE_MQTT_URL list)",
                mqtt.broker_moves,
            )
        ownership = gw.ownership
        if ownership is not None:
            yield GaugeMetricFamily(
                "campusgate_partitions_owned",
                "Partitions this worker owns (holds the lease and the MQTT session of)",
                value=len(ownership.owned),
            )
            yield GaugeMetricFamily(
                "campusgate_partitions_live_workers",
                "Live workers this worker counts when balancing partitions",
                value=ownership.live_workers,
            )
            yield _counter(
                "campusgate_partition_takeovers",
                "Partitions this worker took (at start, from dead workers, when balancing)",
                ownership.takeovers,
            )
            yield _counter(
                "campusgate_partition_losses",
                "Partitions this worker lost to another worker (lease or broker session)",
                ownership.losses,
            )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


class WorkerStatus:
    """The worker's HTTP routes: /metrics, /healthz, /readyz."""

    def __init__(
        self, gateway: Gateway, *, token: str | None = None, store_ttl_s: float = STORE_TTL_S
    ) -> None:
        self.gateway = gateway
        self.token = token
        self.store = StoreGauges(None, with_devices=False, ttl_s=store_ttl_s)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(WorkerCollector(gateway, self.store))
        ProcessCollector(registry=self.registry)
        self._ping: asyncio.Task[str] | None = None
        self._ping_at = float("-inf")

    @property
    def routes(self) -> dict[str, Handler]:
        return {"/metrics": self.metrics, "/healthz": self.healthz, "/readyz": self.readyz}

    async def metrics(self, request: Request) -> Response:
        if not bearer_ok(request.headers, self.token):
            return Response(
                401,
                b"metrics need Authorization: Bearer <CAMPUSGATE_METRICS_TOKEN>\n",
                "text/plain; charset=utf-8",
                {"WWW-Authenticate": "Bearer"},
            )
        self.store.pool = self.gateway.pool
        await self.store.refresh()
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(200, encoder(self.registry), content_type)

    async def healthz(self, request: Request) -> Response:
        return Response.json(200, {"status": "alive"})

    async def readyz(self, request: Request) -> Response:
        checks = await self.checks()
        ready = all(v == "ok" for v in checks.values())
        body: dict[str, object] = {"ready": ready, "checks": checks, **self.deciding_on()}
        return Response.json(200 if ready else 503, body)

    def deciding_on(self) -> dict[str, object]:
        """What the doors are decided on: the roster's age, and where decisions are journaled."""
        gw = self.gateway
        journal, spool = gw.journal, gw.spool
        found: dict[str, object] = {
            "roster_age_s": round(gw.roster.age_s(), 1) if gw.roster is not None else None,
            "journal": "spool" if journal is not None and journal.spooling else "database",
            "spool_items": spool.items if spool is not None else None,
        }
        ownership = gw.ownership
        if ownership is not None:  # a partitioned worker (issue 14): what it owns now
            found["partitions"] = {
                "worker": ownership.worker,
                "owned": ownership.owned,
                "of": ownership.partitions,
                "live_workers": ownership.live_workers,
                "lease_fresh": ownership.lease_fresh(),
            }
        return found

    async def checks(self) -> dict[str, str]:
        """Each part the worker needs and "ok", or what is wrong with it."""
        gw = self.gateway
        roster = gw.roster
        mqtt = gw.mqtt
        return {
            "database": await self._database(),
            "broker": "ok" if mqtt is not None and mqtt.is_connected else "not connected",
            "roster": "ok" if roster is not None and roster.reloads else "not loaded",
        }

    async def _database(self) -> str:
        if self.gateway.pool is None:
            return "not connected"
        now = time.monotonic()
        if self._ping is None or (self._ping.done() and now - self._ping_at > PING_CACHE_S):
            self._ping_at = now
            self._ping = asyncio.ensure_future(self._ping_database())
        return await asyncio.shield(self._ping)

    async def _ping_database(self) -> str:
        pool = self.gateway.pool
        assert pool is not None
        try:
            async with acquire(pool, PING_DEADLINE_S, check_s=None) as conn:
                await ping(conn)
        except Exception as exc:  # whatever the cause, the answer is "not reachable"
            return f"unreachable: {type(exc).__name__}"
        return "ok"


async def start_status_server(
    gateway: Gateway,
    host: str,
    port: int,
    *,
    token: str | None = None,
    store_ttl_s: float = STORE_TTL_S,
) -> StatusServer:
    """A started server of the worker's status routes; OSError if host:port cannot be had."""
    status = WorkerStatus(gateway, token=token, store_ttl_s=store_ttl_s)
    server = StatusServer(status.routes, host, port)
    await server.start()
    return server
