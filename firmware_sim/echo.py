"""A bare MQTT echo responder: the ceiling no gateway can beat (CONTRACT.md section 7).

It answers every `card` event on `P/devices/+/events` with a fixed `admit` on
that device's `commands` topic, through the same transport the gateway uses
(manual acks, the ack after the reply is queued), and does nothing else: no
database, no policy. `campusgate bench` runs it as a subprocess:

    python -m firmware_sim.echo --mqtt-url mqtt://127.0.0.1:1883 --prefix bench-echo
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

from devices.transports.mqtt import BrokerAddress, Message, MqttClient, MqttError

_LOGGER = logging.getLogger(__name__)

DEFAULT_PREFIX = "bench-echo"
READY_LINE = "echo ready"


class EchoResponder:
    """Answers card events with `{"decision": "admit", "reason": "ok", ...}`; counts what it did."""

    def __init__(
        self,
        broker: BrokerAddress | str,
        *,
        prefix: str = DEFAULT_PREFIX,
        client_id: str | None = None,
    ) -> None:
        address = BrokerAddress.parse(broker) if isinstance(broker, str) else broker
        self.prefix = prefix
        self.answered = 0
        self.ignored = 0
        self._client = MqttClient(
            address,
            client_id=client_id or f"bench-echo-{os.getpid()}",
            manual_ack=True,
            on_messages=self._handle,
            subscriptions=[(f"{prefix}/devices/+/events", 1)],
        )

    async def start(self, timeout: float = 10.0) -> None:
        await self._client.connect(timeout)

    async def stop(self) -> None:
        await self._client.close()

    def _handle(self, batch: Sequence[Message]) -> None:
        for message in batch:
            reply = self._reply_to(message)
            if reply is not None:
                topic, payload = reply
                self._client.publish(topic, payload, qos=1)
                self.answered += 1
            else:
                self.ignored += 1
            self._client.ack(message)

    def _reply_to(self, message: Message) -> tuple[str, bytes] | None:
        # P/devices/{id}/events -> P/devices/{id}/commands
        head, _, last = message.topic.rpartition("/")
        if last != "events":
            return None
        try:
            event = json.loads(message.payload)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(event, dict) or event.get("type") != "card":
            return None
        event_id = event.get("event_id")
        if not isinstance(event_id, str):
            return None
        decision = {
            "type": "decision",
            "event_id": event_id,
            "decision": "admit",
            "reason": "ok",
            "message": "echo",
            "unlock_ms": 0,
        }
        return f"{head}/commands", json.dumps(decision, separators=(",", ":")).encode()


async def serve(mqtt_url: str, prefix: str, client_id: str | None) -> None:
    """Run until SIGINT or SIGTERM; print READY_LINE on stdout once subscribed."""
    echo = EchoResponder(mqtt_url, prefix=prefix, client_id=client_id)
    await echo.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(READY_LINE, flush=True)
    try:
        await stop.wait()
    finally:
        await echo.stop()
        _LOGGER.info("echo answered %d events, ignored %d", echo.answered, echo.ignored)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m firmware_sim.echo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--mqtt-url", required=True, help="mqtt://host:port of the broker")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="first topic level")
    parser.add_argument(
        "--client-id", default=None, help="MQTT client id (default: bench-echo-PID)"
    )
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        BrokerAddress.parse(args.mqtt_url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(serve(args.mqtt_url, args.prefix, args.client_id))
        except MqttError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
