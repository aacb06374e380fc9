"""The client's address: the peer, or what a configured reverse proxy says it saw.

`X-Forwarded-For` is believed only when the peer is one of `CAMPUSGATE_TRUSTED_PROXIES`;
then the rightmost address not itself a trusted proxy is the client (anything to its
left was written by the client and proves nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.datastructures import Headers
from starlette.types import Scope

Networks = Sequence[IPv4Network | IPv6Network]


def _trusted(address: str, proxies: Networks) -> bool:
    try:
        ip = ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(scope: Scope, proxies: Networks) -> str:
    """The address to count logins against for this HTTP or WebSocket request."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    forwarded = Headers(scope=scope).getlist("x-forwarded-for")
    hops = [hop.strip() for line in forwarded for hop in line.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ip_address(hop))
            except ValueError:
                return peer  # a proxy passed on garbage: count it against the proxy
    return peer
