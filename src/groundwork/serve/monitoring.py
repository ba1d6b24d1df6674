"""Drift monitoring inside ``groundwork serve``: the latest monitor run as Prometheus gauges (read from
the monitor store when scraped, so every replica reports the shared latest run), and the optional
schedule (``monitor.interval_s``) that runs the monitor in a background thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from groundwork.evaluate.monitor import run_monitor
from groundwork.kb import KnowledgeBase

log = logging.getLogger("groundwork.serve")

TRAFFIC_GAUGES = {
    "top1_psi": "population stability index of top-1 retrieval scores, recent vs reference window",
    "top1_ks_pvalue": "Kolmogorov-Smirnov p-value of top-1 retrieval scores, recent vs reference window",
    "embedding_psi": "mean population stability index of the query-embedding summaries, recent vs reference",
    "abstention_rate": "abstention rate of the recent window",
    "abstention_rate_reference": "abstention rate of the reference window",
}


class MonitorCollector:
    """``groundwork_monitor_*`` gauges of the latest run (none before the first run)."""

    def __init__(self, latest: Callable[[], list[dict[str, Any]]]) -> None:
        self.latest = latest

    def collect(self) -> Any:
        runs = self.latest()
        if not runs:
            return
        run = runs[0]
        ts = GaugeMetricFamily("groundwork_monitor_last_run_timestamp_seconds", "when the latest monitor run ended")
        ts.add_metric([], datetime.fromisoformat(run["created_at"]).timestamp())
        yield ts
        ev = GaugeMetricFamily(
            "groundwork_monitor_eval", "eval metric of the latest run on the live index", labels=["metric"]
        )
        base = GaugeMetricFamily(
            "groundwork_monitor_eval_baseline", "the same metric in the baseline run", labels=["metric"]
        )
        for m, v in ((run.get("eval") or {}).get("metrics") or {}).items():
            ev.add_metric([m], v)
        for m, v in (run.get("baseline_eval") or {}).items():
            base.add_metric([m], v)
        yield ev
        yield base
        for key, doc in TRAFFIC_GAUGES.items():
            value = run["traffic"].get(key)
            if value is not None:
                g = GaugeMetricFamily(f"groundwork_monitor_{key}", doc)
                g.add_metric([], value)
                yield g
        alert = GaugeMetricFamily("groundwork_monitor_alert", "1 when the latest run found a regression or drift")
        alert.add_metric([], float(run["alert"]))
        yield alert


def monitor_loop(kb: KnowledgeBase, stop: threading.Event) -> None:
    """Run the monitor every ``monitor.interval_s`` until ``stop`` is set. A replica skips a turn when
    another one stored a run within the interval (the runs are shared); a failing run is logged and
    retried at the next turn only."""
    interval = kb.settings.monitor.interval_s
    while not stop.wait(interval):
        try:
            latest = kb.components.monitor.list(1)
            age = (
                (datetime.now(UTC) - datetime.fromisoformat(latest[0]["created_at"])).total_seconds()
                if latest
                else None
            )
            if age is None or age >= interval * 0.9:
                run_monitor(kb, kb.settings.monitor)
        except Exception:  # the schedule must outlive one bad run (an unreadable eval set, a database blip)
            log.exception("monitor run failed")
