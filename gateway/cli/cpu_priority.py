"""How much CPU the API process may take from the door loop: its scheduling priority,
and (`CAMPUSGATE_API_CPUS`) the CPUs it may run on at all.

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


def parse_cpus(text: str) -> frozenset[int]:
    """A CPU list like "1", "0,2" or "2-3,6" (Linux's cpuset notation); empty: none given."""
    cpus: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"{text!r} is not a CPU list like 1 or 0,2 or 2-3,6") from None
        if low < 0 or high < low:
            raise ValueError(f"{part!r} in {text!r} is not a CPU range")
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def apply_cpu_affinity(text: str) -> str:
    """Keep this process's threads (and the threads they start) on the CPUs `text` lists;
    what was applied, for the log. CPUs this host does not have are an error."""
    cpus = parse_cpus(text)
    if not cpus:
        return "any CPU"
    if not hasattr(os, "sched_setaffinity"):
        return "any CPU (no CPU affinity on this system)"
    available = os.sched_getaffinity(0)
    if not cpus <= available:
        missing = ",".join(str(c) for c in sorted(cpus - available))
        raise ValueError(f"CAMPUSGATE_API_CPUS={text}: CPU {missing} is not available here")
    for tid in _threads():
        os.sched_setaffinity(tid, cpus)
    return "CPUs " + ",".join(str(c) for c in sorted(cpus))
