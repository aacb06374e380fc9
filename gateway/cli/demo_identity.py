"""The demo's broker accounts, enforced by its own Mosquitto, and a probe that shows it.

The demo makes the accounts as `campusgate devices credentials --sim-account` does,
from the roster it has just imported, and every client then logs in as itself: the
gateway on its account, each simulated door and the camera on their device's, the alert
watcher on the integration account, and the live view (it reads every door's commands,
which no production account may) on the simulator's. The probe tries what the ACL must
refuse, so a demo whose broker does not enforce it fails its showcase.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from devices.transports.mqtt import BrokerAddress
from firmware_sim.scenarios import ScenarioResult
from gateway.services.broker_credentials import (
    DEVICE_SECRETS,
    SERVICE_SECRETS,
    read_secrets,
    write_credentials,
)
from gateway.store.broker_devices import mqtt_device_ids
from gateway.store.db import connect

PROBE_TIMEOUT_S = 10.0
NOT_AUTHORIZED = 0x87  # MQTT 5 reason code in CONNACK and PUBACK


@dataclass(frozen=True)
class DemoAccounts:
    """Where the broker's files are, and the passwords the demo's clients log in with."""

    folder: Path
    devices: dict[str, str]  # device id (= username) -> password
    services: dict[str, str]  # service account -> password

    def login(self, address: BrokerAddress, account: str) -> BrokerAddress:
        """`address` logged in as the service `account`."""
        return replace(address, username=account, password=self.services[account])


async def make_accounts(dsn: str, folder: Path, prefix: str) -> DemoAccounts:
    """passwd, acl and the secrets for every MQTT device of the roster, plus the gateway,
    integration and simulator accounts; passwords kept across runs. Raises
    CredentialsError (e.g. no mosquitto_passwd)."""
    conn = await connect(dsn)
    try:
        device_ids = await mqtt_device_ids(conn)
    finally:
        await conn.close()
    await asyncio.to_thread(write_credentials, folder, device_ids, prefix=prefix, sim_account=True)
    return DemoAccounts(
        folder,
        {d: password for d, (_, password) in read_secrets(folder / DEVICE_SECRETS).items()},
        {a: password for a, (_, password) in read_secrets(folder / SERVICE_SECRETS).items()},
    )


async def probe_enforcement(
    address: BrokerAddress, accounts: DemoAccounts, prefix: str, device: str, other: str
) -> ScenarioResult:
    """What the broker does with a client without an account, a wrong password, and
    `device` publishing a card event in `other`'s name."""
    return await asyncio.to_thread(_probe, address, accounts, prefix, device, other)


def _probe(
    address: BrokerAddress, accounts: DemoAccounts, prefix: str, device: str, other: str
) -> ScenarioResult:
    result = ScenarioResult("broker enforces device identities")
    anonymous = _Session(address, None, None)
    result.expect("a client without credentials", "refused", anonymous.outcome)
    anonymous.close()
    wrong = _Session(address, device, secrets.token_urlsafe(12))
    result.expect(f"{device} with a wrong password", "refused", wrong.outcome)
    wrong.close()
    own = _Session(address, device, accounts.devices[device])
    result.expect(f"{device} with its own password", "accepted", own.outcome)
    if own.outcome == "accepted":
        # Were it let through, the gateway would count a malformed event, nothing more.
        got = own.publish(f"{prefix}/devices/{other}/events", b"{}")
        result.expect(f"{device} publishing on {other}'s events", "not authorized", got)
    own.close()
    return result


class _Session:
    """A plain MQTT 5 client, looped by hand, to see the broker's own reason codes (no
    background thread: a refused client must not go on reconnecting)."""

    def __init__(self, address: BrokerAddress, username: str | None, password: str | None):
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"demo-probe-{secrets.token_hex(3)}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if address.tls:
            self._client.tls_set_context(address.tls_context())
        connack: list[ReasonCode] = []
        self._acks: list[int] = []
        self._client.on_connect = lambda c, u, f, reason, p: connack.append(reason)
        self._client.on_publish = lambda c, u, mid, reason, p: self._acks.append(reason.value)
        try:
            self._client.connect(address.host, address.port, keepalive=30)
        except OSError as exc:
            self.outcome = f"no connection ({exc})"
            return
        if not self._loop_until(lambda: bool(connack)):
            self.outcome = "no answer"
            return
        self.outcome = "refused" if connack[0].is_failure else "accepted"

    def _loop_until(self, done: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while not done() and time.monotonic() < deadline:
            if self._client.loop(0.05) != paho.MQTT_ERR_SUCCESS and not done():
                return False  # the broker closed the connection without an answer
        return done()

    def publish(self, topic: str, payload: bytes) -> str:
        """The broker's answer to a QoS 1 publish."""
        self._client.publish(topic, payload, qos=1)
        if not self._loop_until(lambda: bool(self._acks)):
            return "no answer"
        code = self._acks[0]
        return "not authorized" if code == NOT_AUTHORIZED else f"accepted (0x{code:02x})"

    def close(self) -> None:
        self._client.disconnect()
