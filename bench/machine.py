"""How busy the machine was while a benchmark ran, so noisy timings can be read for what they are.

``Load()`` reads /proc/stat and this process's CPU time at the start; ``.report()`` gives the number
of cores, the load average, and the cores kept busy on average by *other* processes during the run
(all busy CPU time minus this process's, over the wall time). Linux only; elsewhere the figures are None.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any


def _busy_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot (user, nice, system, irq, softirq, steal)."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


class Load:
    """Start measuring at construction; ``report()`` may be called any number of times."""

    def __init__(self) -> None:
        self.t0, self.busy0, self.own0 = time.monotonic(), _busy_s(), _own_s()
        self.loadavg0 = _loadavg()

    def report(self) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        busy = _busy_s()
        others = None
        if busy is not None and self.busy0 is not None and wall > 0:
            others = max(0.0, (busy - self.busy0 - (_own_s() - self.own0)) / wall)
        return {
            "cores": os.cpu_count(),
            "loadavg_start": self.loadavg0,
            "loadavg_end": _loadavg(),
            "other_processes_busy_cores": round(others, 2) if others is not None else None,
            "wall_s": round(wall, 1),
        }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
