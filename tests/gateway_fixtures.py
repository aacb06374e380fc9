"""A gateway on the private test broker, for end-to-end tests (imported, not a conftest)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

from devices.transports.mqtt import BrokerAddress
from gateway.pipeline.door_worker import Gateway, GatewayConfig
from gateway.pipeline.doors import DoorPolicy

TZ = ZoneInfo("Asia/Shanghai")


@contextlib.asynccontextmanager
async def running_gateway(
    dsn: str,
    mqtt_url: str,
    *,
    label: str = "gw",
    window_s: float = 2.0,
    prefix: str | None = None,
    broker: BrokerAddress | None = None,
) -> AsyncIterator[tuple[Gateway, str]]:
    """A started gateway on a topic prefix of its own; yields (gateway, prefix).

    `prefix` fixes the prefix (a broker ACL names it); `broker` replaces the address parsed
    from `mqtt_url` (TLS files of an mqtts:// broker).
    """
    prefix = prefix or f"{label}{secrets.token_hex(4)}"
    gateway = Gateway(
        GatewayConfig(
            database_url=dsn,
            broker=broker or BrokerAddress.parse(mqtt_url),
            topic_prefix=prefix,
            policy=DoorPolicy(tz=TZ, fever_threshold_c=37.3, temperature_window_s=window_s),
            client_id=f"gw-{prefix}",
        )
    )
    await gateway.start()
    try:
        yield gateway, prefix
    finally:
        await gateway.stop()
