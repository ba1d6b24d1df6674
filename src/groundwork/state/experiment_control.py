"""Starting, reading and ending experiments, and routing each answer to its arm; shared by the CLI,
the admin API and the canary check that runs after treatment answers.

Ending an experiment sets the default profile: ``stopped`` and ``rolled_back`` return all traffic to the
control, ``promoted`` sends it all to the treatment. Each request reads the running experiment and
the default profile from the shared store (two indexed single-row queries, no cache), so a change made
by any replica or command applies from the next request on everywhere; profiles themselves are
immutable and cached per process by ref.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from groundwork.config import Settings
from groundwork.state.arm_stats import arm_figures, canary_verdict, public, significance
from groundwork.state.experiments import (
    ARMS,
    Assignment,
    CanaryThresholds,
    Experiment,
    ExperimentConflict,
    ExperimentError,
    ExperimentNotFound,
    new_experiment,
)
from groundwork.state.profiles import Profile, apply_profile
from groundwork.state.protocols import AuditLog, ExperimentStore, ProfileStore

log = logging.getLogger("groundwork.experiments")


def start_experiment(
    profiles: ProfileStore,
    experiments: ExperimentStore,
    control: str,
    treatment: str,
    share: float,
    canary: CanaryThresholds | None,
    actor: str,
    settings: Settings | None = None,
) -> Experiment:
    """Start an experiment between two profiles (``name`` pins its newest version now); with
    ``settings``, both profiles are first applied to them, so a profile that does not fit the
    deployment is refused here rather than failing its arm's requests. Raises ProfileError for an
    unknown or unfitting profile, ExperimentError for a bad share or while another runs."""
    c, t = profiles.get(control), profiles.get(treatment)
    if settings is not None:
        for p in (c, t):
            apply_profile(settings, p.override)
    return experiments.start(new_experiment(c.ref, t.ref, share, canary, actor))


def experiment_status(experiments: ExperimentStore, audit: AuditLog, experiment_id: str | None) -> dict[str, Any]:
    """The experiment (the running one for None), per-arm figures, p-values and its events.
    Raises ExperimentError when there is no such experiment (or none runs)."""
    exp = experiments.get(experiment_id) if experiment_id else experiments.running()
    if exp is None:
        raise ExperimentNotFound("no experiment is running; give an experiment id (`groundwork experiment list`)")
    figures = arm_figures(audit.arm_rows(exp.experiment_id))
    return {
        "experiment": exp.to_dict(),
        "arms": public(figures),
        "p_values": significance(figures),
        "events": [e.__dict__ for e in experiments.events(exp.experiment_id)],
    }


def finish(
    profiles: ProfileStore,
    experiments: ExperimentStore,
    audit: AuditLog,
    experiment_id: str,
    outcome: str,
    actor: str,
    reason: str,
) -> Experiment:
    """End a running experiment as ``outcome`` (stopped, promoted, rolled_back), with the figures of
    the moment in its event, and set the default profile (the treatment when promoted, else the
    control). Raises ExperimentError when it is unknown or not running."""
    exp = experiments.get(experiment_id)
    figures = public(arm_figures(audit.arm_rows(exp.experiment_id)))
    ended = experiments.end(exp.experiment_id, outcome, actor, reason, figures)
    if ended is None:
        raise ExperimentConflict(
            f"experiment {exp.experiment_id} is not running ({experiments.get(experiment_id).status})"
        )
    profiles.set_default(exp.treatment if outcome == "promoted" else exp.control)
    return ended


class ExperimentRouter:
    """Per request: which profile and arm answer (``assign``); after a treatment answer of a canary,
    whether to roll it back (``after_answer``)."""

    def __init__(self, profiles: ProfileStore, experiments: ExperimentStore, audit: AuditLog) -> None:
        self.profiles, self.experiments, self.audit = profiles, experiments, audit
        self._cache: dict[str, Profile] = {}
        self._lock = threading.Lock()
        self.replica = f"{socket.gethostname()}:{os.getpid()}"

    def _profile(self, ref: str) -> Profile:
        with self._lock:
            cached = self._cache.get(ref)
        if cached is None:
            cached = self.profiles.get(ref)
            with self._lock:
                self._cache[ref] = cached
        return cached

    def assign(self, key_id: str, forced_arm: str | None = None) -> Assignment:
        """The running experiment's arm for ``key_id`` (or ``forced_arm``, from the admin header), else
        the default profile. Raises ExperimentError for a forced arm that is not control/treatment."""
        if forced_arm is not None and forced_arm not in ARMS:
            raise ExperimentError(f"X-Groundwork-Arm: {forced_arm[:40]!r} is not one of {', '.join(ARMS)}")
        exp = self.experiments.running()
        if exp is None:
            return Assignment(self.profiles.default())
        arm = forced_arm or exp.arm(key_id)
        return Assignment(self._profile(exp.profile_ref(arm)), exp, arm)

    def after_answer(self, assignment: Assignment) -> Experiment | None:
        """After a treatment answer of a canary: the rolled-back experiment when its figures crossed a
        threshold (this replica recorded it), else None. Reads the experiment's audit rows: the cost
        grows with the treatment's answers, which a canary keeps small."""
        exp = assignment.experiment
        if exp is None or exp.canary is None or assignment.arm != "treatment":
            return None
        try:
            return self._judge(exp)
        except ExperimentError:  # another replica or an operator ended it first
            return None
        except Exception:  # the answer is already given and audited: a failed check must not fail it
            log.exception(
                "canary check of experiment %s failed; it runs again after the next answer", exp.experiment_id
            )
            return None

    def _judge(self, exp: Experiment) -> Experiment | None:
        if exp.canary is None:
            return None
        crossed = canary_verdict(exp.canary, arm_figures(self.audit.arm_rows(exp.experiment_id))["treatment"])
        if not crossed:
            return None
        ended = finish(
            self.profiles,
            self.experiments,
            self.audit,
            exp.experiment_id,
            "rolled_back",
            f"canary ({self.replica})",
            "canary thresholds crossed: " + "; ".join(crossed),
        )
        log.warning("experiment %s rolled back: %s", exp.experiment_id, ended.end_reason)
        return ended
