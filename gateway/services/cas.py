"""CAS 2.0/3.0 service-ticket validation, and mapping the CAS user to a roster person.

The ticket is validated by the CAS server over HTTP (asynchronously, with a timeout);
its XML answer is parsed with defusedxml, so entity expansion and external entities in
a hostile or broken answer are refused instead of evaluated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

_LOGGER = logging.getLogger(__name__)
_NS = "{http://www.yale.edu/tp/cas}"
TIMEOUT_S = 5.0
MAX_ANSWER_BYTES = 64 * 1024


class CasError(RuntimeError):
    """The ticket was not validated; `code` is CAS's failure code or ours."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class CasConfig:
    server_url: str  # e.g. https://cas.example.edu/cas (no trailing slash)
    version: int = 3  # 3: /p3/serviceValidate with attributes; 2: /serviceValidate
    user_attribute: str = ""  # the attribute naming the person; "" = the CAS user itself
    person_field: str = "id"  # the roster column that value is matched against

    @property
    def validate_url(self) -> str:
        path = "/p3/serviceValidate" if self.version == 3 else "/serviceValidate"
        return self.server_url.rstrip("/") + path

    def login_url(self, service: str) -> str:
        return str(httpx.URL(self.server_url.rstrip("/") + "/login", params={"service": service}))


@dataclass(frozen=True, slots=True)
class CasUser:
    user: str
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def identity(self, attribute: str) -> str | None:
        """The value naming the person: the CAS user, or the first value of `attribute`."""
        if not attribute:
            return self.user
        values = self.attributes.get(attribute) or []
        return values[0] if values else None


def parse_answer(text: str | bytes) -> CasUser:
    """The user of a serviceValidate answer; CasError for a failure or a malformed answer."""
    try:
        root = fromstring(text)
    except (ParseError, DefusedXmlException) as exc:
        raise CasError("BAD_ANSWER", f"the CAS answer is not acceptable XML: {exc}") from None
    if root.tag != _NS + "serviceResponse":
        raise CasError("BAD_ANSWER", "the CAS answer is not a serviceResponse")
    failure = root.find(_NS + "authenticationFailure")
    if failure is not None:
        code = failure.get("code", "UNKNOWN")
        raise CasError(code, f"CAS refused the ticket: {code} {(failure.text or '').strip()}")
    success = root.find(_NS + "authenticationSuccess")
    user = success.findtext(_NS + "user") if success is not None else None
    if success is None or not user or not user.strip():
        raise CasError("BAD_ANSWER", "the CAS answer names no user")
    return CasUser(user.strip(), _attributes(success.find(_NS + "attributes")))


def _attributes(element: Element | None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for child in element if element is not None else []:
        if child.tag.startswith(_NS) and child.text:
            found.setdefault(child.tag[len(_NS) :], []).append(child.text.strip())
    return found


async def validate_ticket(config: CasConfig, ticket: str, service: str) -> CasUser:
    """Ask the CAS server whether `ticket` was issued for `service`; the user it names."""
    params = {"ticket": ticket, "service": service}
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False) as client:
            answer = await client.get(config.validate_url, params=params)
    except httpx.HTTPError as exc:
        _LOGGER.warning("CAS server %s unreachable: %s", config.validate_url, exc)
        raise CasError("UNREACHABLE", "the CAS server did not answer") from None
    if answer.status_code != 200:
        raise CasError("BAD_ANSWER", f"the CAS server answered HTTP {answer.status_code}")
    if len(answer.content) > MAX_ANSWER_BYTES:
        raise CasError("BAD_ANSWER", "the CAS answer is too large")
    return parse_answer(answer.content)
