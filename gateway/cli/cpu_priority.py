"""How much CPU the API process may take from the door loop: its scheduling priority.

`CAMPUSGATE_API_CPU_PRIORITY` is `idle` (Linux `SCHED_IDLE`: the API runs on CPU time the
door loop, the broker and PostgreSQL leave over) or a niceness from 0 to 19 (a smaller share
when both want the CPU, but never starved). It is set once, first thing in the API process,
before any thread starts, so the argon2 pool and the scheduler's threads inherit it.
"""

from __future__ import annotations

import os

IDLE = "idle"


def apply_cpu_priority(priority: str) -> str:
    """Lower this process's CPU priority as `priority` says; what was applied, for the log.

    `idle` falls back to niceness 19 where `SCHED_IDLE` does not exist (not Linux) or is
    refused (a seccomp filter without sched_setscheduler).
    """
    if priority == IDLE:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return "SCHED_IDLE"
        except (AttributeError, OSError):
            priority = "19"
    raised = int(priority) - os.getpriority(os.PRIO_PROCESS, 0)
    if raised > 0:  # an unprivileged process can only lower its priority
        os.nice(raised)
    return f"nice {os.getpriority(os.PRIO_PROCESS, 0)}"
