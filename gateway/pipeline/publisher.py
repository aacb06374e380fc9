"""What the gateway sends: decisions to devices, alerts to consoles and integrations."""

from __future__ import annotations

import json

from devices.codecs.contract_json import encode_decision
from devices.transports.mqtt import Message, MqttClient
from gateway.domain.alerts import Alert
from gateway.domain.decisions import Decision
from gateway.pipeline.topics import Topics


class Publisher:
    def __init__(self, client: MqttClient, topics: Topics) -> None:
        self._client = client
        self._topics = topics

    def decision(self, device_id: str, decision: Decision) -> None:
        self._client.publish(self._topics.commands(device_id), encode_decision(decision), qos=1)

    def alert(self, alert: Alert) -> None:
        payload = json.dumps(alert.to_wire(), ensure_ascii=False, separators=(",", ":")).encode()
        self._client.publish(self._topics.alert(alert.kind.value), payload, qos=1)

    def ack(self, message: Message) -> None:
        self._client.ack(message)
