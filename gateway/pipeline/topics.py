"""Topic names of contract section 3."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str

    @property
    def events(self) -> str:
        return f"{self.prefix}/devices/+/events"

    @property
    def states(self) -> str:
        return f"{self.prefix}/devices/+/state"

    @property
    def signing_key(self) -> str:
        """Retained: the public key that signs commands, for terminals to pin."""
        return f"{self.prefix}/gateway/signing-key"

    def gateway_state(self, worker: str) -> str:
        """Retained: one worker's presence, `{"online": false}` its last will (issue 13)."""
        return f"{self.prefix}/gateway/state/{worker}"

    @property
    def uploads(self) -> str:
        """What terminals decided offline, uploaded when the gateway is back (issue 13)."""
        return f"{self.prefix}/devices/+/uploads"

    def allowlist(self, device_id: str) -> str:
        return f"{self.prefix}/devices/{device_id}/allowlist"

    def allowlist_delta(self, device_id: str) -> str:
        return f"{self.prefix}/devices/{device_id}/allowlist-delta"

    def commands(self, device_id: str) -> str:
        return f"{self.prefix}/devices/{device_id}/commands"

    def device_events(self, device_id: str) -> str:
        """Where one device sends its events (the door rig delivers there, as a device would)."""
        return f"{self.prefix}/devices/{device_id}/events"

    def state(self, device_id: str) -> str:
        return f"{self.prefix}/devices/{device_id}/state"

    def alert(self, kind: str) -> str:
        return f"{self.prefix}/alerts/{kind}"

    def parse(self, topic: str) -> tuple[str, str] | None:
        """`(device_id, leaf)` for `P/devices/{device_id}/{leaf}`, else None."""
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != self.prefix or parts[1] != "devices" or not parts[2]:
            return None
        return parts[2], parts[3]
