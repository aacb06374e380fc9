"""The campus's scheduled jobs, composed once for `serve` and `demo`.

Each workflow adds its job here: health expiry, travel re-evaluation, the
gathering watch, daily reports, retention, the visitor overstay watch.
"""

from __future__ import annotations

import asyncpg

from gateway.services.checkin_followup import reminder_job
from gateway.services.health_jobs import health_jobs
from gateway.services.reports.schedule import daily_report_job
from gateway.services.retention import retention_job
from gateway.services.scheduler import Job
from gateway.services.tracing_stays import stays_job
from gateway.services.visitor_overstay import overstay_job
from gateway.settings import Settings


def campus_jobs(pool: asyncpg.Pool, settings: Settings) -> list[Job]:
    """Every scheduled job of a campus served from `pool`."""
    jobs: list[Job] = []
    jobs.extend(health_jobs(pool, settings))
    jobs.append(daily_report_job(pool, settings))
    jobs.append(retention_job(pool, settings))
    jobs.append(stays_job(pool, settings))
    jobs.append(reminder_job(pool, settings))
    jobs.append(overstay_job(pool))
    return jobs
