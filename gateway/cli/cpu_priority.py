"""How much CPU the API process may take from the door loop: its scheduling priority.

`CAMPUSGATE_API_CPU_PRIORITY` is `idle` (Linux `SCHED_IDLE`: the API runs on CPU time the
door loop, the broker and PostgreSQL leave over) or a niceness from 0 to 19 (a smaller share
when both want the CPU, but never starved). The API process applies it once it listens (a
start-up starved on a busy host would miss `serve`'s start-up deadline), to every thread it
has then; threads started later (the argon2 pool) inherit it from the thread starting them.
"""

from __future__ import annotations

import os
from pathlib import Path

IDLE = "idle"


def _threads() -> list[int]:
    """This process's thread ids (Linux sets both settings per thread); [0] elsewhere."""
    try:
        return [int(tid) for tid in os.listdir(Path("/proc/self/task"))]
    except OSError:
        return [0]


def apply_cpu_priority(priority: str) -> str:
    """Lower this process's CPU priority as `priority` says; what was applied, for the log.

    `idle` falls back to niceness 19 where `SCHED_IDLE` does not exist (not Linux) or is
    refused (a seccomp filter without sched_setscheduler).
    """
    threads = _threads()
    if priority == IDLE:
        try:
            for tid in threads:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            return "SCHED_IDLE"
        except (AttributeError, OSError):
            priority = "19"
    for tid in threads:
        # An unprivileged process can only lower its priority: never ask for more.
        niceness = max(int(priority), os.getpriority(os.PRIO_PROCESS, tid))
        os.setpriority(os.PRIO_PROCESS, tid, niceness)
    return f"nice {os.getpriority(os.PRIO_PROCESS, 0)}"
