"""Sending a stored report: e-mail over SMTP (CSV and XLSX attached, HTML body) and
webhooks (a JSON summary with links; no names, so no personal data leaves by webhook).

Every attempt is recorded in report_deliveries, ok or failed with its error; a failed
one is retried by the next scheduled run or a resend. The report itself is stored
before any attempt, so a delivery failure never loses it.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import httpx

from gateway.domain.reports import Channel, DailyReport, Delivery, Recipient
from gateway.services.reports.labels import AUDIENCE, summary_rows, title
from gateway.services.reports.render_csv import render_csv
from gateway.services.reports.render_html import render_html
from gateway.services.reports.render_xlsx import render_xlsx
from gateway.settings import Settings
from gateway.store import reports as store

_LOGGER = logging.getLogger(__name__)
SMTP_TIMEOUT_S = 20.0
WEBHOOK_TIMEOUT_S = 10.0
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    tls: bool  # smtps://: TLS from the first byte
    user: str | None = None
    password: str | None = None


def parse_smtp_url(url: str | None) -> SmtpServer:
    """smtp://[user:pass@]host[:port] or smtps://...; ValueError when unset or malformed."""
    if not url:
        raise ValueError("no SMTP server: set CAMPUSGATE_SMTP_URL (smtp://host:port)")
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("CAMPUSGATE_SMTP_URL must be smtp://[user:pass@]host:port or smtps://")
    tls = parts.scheme == "smtps"
    return SmtpServer(
        parts.hostname,
        parts.port or (465 if tls else 25),
        tls,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


def filename(report: DailyReport, ext: str) -> str:
    unit = report.org_unit_id or "campus"
    return f"campusgate-{report.audience.value}-{unit}-{report.day.isoformat()}.{ext}"


@dataclass(frozen=True, slots=True)
class Rendered:
    """The files of one report as sent (full lists: the offices are its audience)."""

    html: str
    csv: bytes
    xlsx: bytes


def render_all(report: DailyReport) -> Rendered:
    return Rendered(
        render_html(report, with_health=True),
        render_csv(report, with_health=True),
        render_xlsx(report, with_health=True),
    )


def build_email(report: DailyReport, files: Rendered, sender: str, to: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[CampusGate] {title(report)}"
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="campusgate")
    text = "\n".join(f"{name}: {value}" for name, value in summary_rows(report))
    message.set_content(text + "\n\nThe full report is attached (CSV, XLSX).\n")
    message.add_alternative(files.html, subtype="html")
    message.add_attachment(
        files.csv, maintype="text", subtype="csv", filename=filename(report, "csv")
    )
    maintype, subtype = XLSX_TYPE.split("/")
    message.add_attachment(
        files.xlsx, maintype=maintype, subtype=subtype, filename=filename(report, "xlsx")
    )
    return message


def _send_mail(server: SmtpServer, message: EmailMessage) -> None:
    """Blocking: run through asyncio.to_thread."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if server.tls:
        smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=SMTP_TIMEOUT_S, context=context)
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=SMTP_TIMEOUT_S)
    with smtp:
        smtp.ehlo()
        if not server.tls and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
        if server.user:
            smtp.login(server.user, server.password or "")
        smtp.send_message(message)


def webhook_payload(report: DailyReport, base_url: str) -> dict[str, Any]:
    """The summary numbers and where to fetch the files (behind the API's login)."""
    link = f"{base_url.rstrip('/')}/api/daily-reports/{report.id}"
    return {
        "type": "campusgate.daily_report",
        "id": report.id,
        "day": report.day.isoformat(),
        "org_unit": report.summary.get("org_unit"),
        "audience": report.audience.value,
        "title": title(report),
        "title_en": f"{AUDIENCE[report.audience.value][1]} {report.day.isoformat()}",
        "generated_at": report.generated_at.isoformat(),
        "summary": {k: v for k, v in report.summary.items() if k != "timezone"},
        "links": {
            "json": link,
            "csv": f"{link}/csv",
            "xlsx": f"{link}/xlsx",
            "html": f"{link}/html",
        },
    }


async def _post(url: str, payload: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False) as client:
        response = await client.post(url, json=payload)
        response.raise_for_status()


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\r", " ").replace("\n", " ")
    return text[:500]


async def deliver(
    conn: asyncpg.Connection,
    report: DailyReport,
    recipients: Sequence[Recipient],
    settings: Settings,
    *,
    by: str,
) -> list[Delivery]:
    """Send `report` to each recipient and record every attempt; never raises for one."""
    if not recipients:
        return []
    files = await asyncio.to_thread(render_all, report)
    base_url = f"http://{settings.api_host}:{settings.api_port}"
    done: list[Delivery] = []
    for recipient in recipients:
        error: str | None = None
        try:
            if recipient.channel is Channel.EMAIL:
                server = parse_smtp_url(settings.smtp_url)
                message = build_email(report, files, settings.smtp_from, recipient.email)
                await asyncio.to_thread(_send_mail, server, message)
            else:
                await _post(recipient.address, webhook_payload(report, base_url))
        except (OSError, ValueError, smtplib.SMTPException, httpx.HTTPError) as exc:
            error = _one_line(exc)
            _LOGGER.warning("report %s to %s failed: %s", report.id, recipient.address, error)
        done.append(
            await store.record_delivery(
                conn,
                report_id=report.id,
                channel=recipient.channel,
                recipient=recipient.address,
                ok=error is None,
                error=error,
                sent_by=by,
            )
        )
    return done
