"""What lets doors decide without the gateway (issue 13), hooked into one worker.

- Presence: `{"online": true}` retained on `P/gateway/state/{worker}` at every connect, the last
  will `{"online": false}`, and `{"online": false}` on a clean stop.
- Allowlists: `AllowlistPublisher` keeps every device's list current (needs the signing key),
  on the one worker that `PublisherElection` elects through PostgreSQL.
- Uploads: messages on `P/devices/+/uploads` go to the `UploadDesk`; everything else to
  the normal ingest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.transports.mqtt import Message, MqttClient, Will
from gateway.metrics import Counters
from gateway.pipeline.alerting import Alerter
from gateway.pipeline.allowlist_election import PublisherElection
from gateway.pipeline.allowlists import AllowlistConfig, AllowlistPublisher, salt_secret
from gateway.pipeline.dedupe import SeenEvents
from gateway.pipeline.doors import DoorPolicy
from gateway.pipeline.offline_uploads import UploadDesk
from gateway.pipeline.signing import Ed25519CommandSigner
from gateway.pipeline.topics import Topics
from gateway.policy.occupancy import Occupancy
from gateway.policy.roster_index import RosterIndex

ONLINE = json.dumps({"online": True}).encode()
OFFLINE = json.dumps({"online": False}).encode()

Handler = Callable[[Sequence[Message]], None]


def presence_will(topics: Topics, worker: str) -> Will:
    return Will(topics.gateway_state(worker), OFFLINE, qos=1, retain=True)


class OfflineSupport:
    """Presence, allowlists and uploads of one worker."""

    def __init__(
        self,
        topics: Topics,
        worker: str,
        publish: Callable[[str, bytes], None],
        *,
        election: PublisherElection | None = None,
        uploads: UploadDesk | None = None,
    ) -> None:
        self._topics = topics
        self._state = topics.gateway_state(worker)
        self._publish = publish
        self.election = election
        self.uploads = uploads

    @property
    def allowlists(self) -> AllowlistPublisher | None:
        """This worker's publisher while it is the elected one, else None."""
        return self.election.publisher if self.election is not None else None

    def subscriptions(self) -> list[tuple[str, int]]:
        return [(self._topics.uploads, 1)] if self.uploads is not None else []

    def on_connected(self) -> None:
        self._publish(self._state, ONLINE)
        if self.allowlists is not None:
            # A broker restarted without persistence has lost the retained lists.
            self.allowlists.republish()

    def route(self, ingest: Handler) -> Handler:
        """The handler for every message: uploads here, the rest to `ingest`."""

        def handle(messages: Sequence[Message]) -> None:
            rest = []
            for message in messages:
                parsed = self._topics.parse(message.topic)
                if self.uploads is not None and parsed is not None and parsed[1] == "uploads":
                    self.uploads.on_upload(message, parsed[0])
                else:
                    rest.append(message)
            if rest:
                ingest(rest)

        return handle

    def start(self) -> None:
        if self.election is not None:
            self.election.start()

    async def stop(self) -> None:
        """Say the gateway is gone (terminals go offline at once), finish the uploads."""
        if self.election is not None:
            await self.election.stop()  # frees the lock: a standby takes over
        if self.uploads is not None:
            await self.uploads.drain()
        self._publish(self._state, OFFLINE)


def offline_support(
    *,
    mqtt: MqttClient,
    topics: Topics,
    worker: str,
    index: Callable[[], RosterIndex],
    pool: asyncpg.Pool,
    database_url: str,
    policy: DoorPolicy,
    seen: SeenEvents,
    occupancy: Occupancy,
    alerter: Alerter,
    signer: Ed25519CommandSigner | None,
    signing_key: Ed25519PrivateKey | None,
    allowlists: AllowlistConfig | None,
    counters: Counters,
) -> OfflineSupport:
    """What one worker needs for offline doors; allowlists only with a config and the key."""

    def retained(topic: str, payload: bytes) -> None:
        mqtt.publish(topic, payload, qos=1, retain=True)

    election = None
    if allowlists is not None and signing_key is not None and signer is not None:
        config, secret = allowlists, salt_secret(signing_key)

        def guarded(topic: str, payload: bytes) -> None:
            # Never after the lock is gone: another worker may lead by now.
            if election is not None and election.holds():
                retained(topic, payload)

        def publisher() -> AllowlistPublisher:
            return AllowlistPublisher(
                publish=guarded,
                topics=topics,
                index=index,
                occupancy=occupancy.count,
                signer=signer,
                secret=secret,
                config=config,
            )

        election = PublisherElection(database_url, topics.prefix, publisher)
    uploads = UploadDesk(
        pool=pool,
        index=index,
        policy=policy,
        seen=seen,
        occupancy=occupancy,
        alerter=alerter,
        publish=lambda topic, payload: mqtt.publish(topic, payload, qos=1),
        ack=mqtt.ack,
        topics=topics,
        signer=signer,
        counters=counters,
    )
    return OfflineSupport(topics, worker, retained, election=election, uploads=uploads)
