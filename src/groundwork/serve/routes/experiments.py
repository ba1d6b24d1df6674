"""Profiles and experiments (admin scope, deployment-wide): the API of `groundwork profiles` and
`groundwork experiment`. A key bound to a tenant may not use them: a profile or an experiment changes
the answers of every tenant."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from groundwork.errors import GroundworkError
from groundwork.serve.auth import Principal
from groundwork.serve.deps import ADMIN, SERVICE
from groundwork.serve.errors import AUTH_ERRORS, ERROR, ApiError
from groundwork.serve.service import Service
from groundwork.state.experiment_control import experiment_status, finish, start_experiment
from groundwork.state.experiments import CanaryThresholds, ExperimentConflict, ExperimentNotFound
from groundwork.state.profiles import ProfileNotFound

router = APIRouter(tags=["admin"])
_ERRORS = AUTH_ERRORS | {404: ERROR, 409: ERROR}


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=63, description="profile name; an existing name gets its next version")
    override: dict[str, dict[str, Any]] = Field(
        description="settings override: sections retrieval, answer, generator (prompt, max_tokens)"
    )


class ProfileOut(BaseModel):
    name: str
    version: int
    ref: str
    override: dict[str, Any]
    created_at: str
    created_by: str


class CanaryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_abstention_rate: float | None = Field(None, ge=0, le=1)
    min_grounding: float | None = Field(None, ge=0, le=1)
    max_error_rate: float | None = Field(None, ge=0, le=1)
    min_answers: int = Field(50, ge=1, le=1_000_000)


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    control: str = Field(max_length=80, description="profile ref: name (its newest version) or name@version")
    treatment: str = Field(max_length=80)
    share: float = Field(gt=0, le=100, description="percentage of API keys routed to the treatment")
    canary: CanaryIn | None = None


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500)


class ExperimentOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    experiment_id: str
    control: str
    treatment: str
    share: float
    status: str


class StatusOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    experiment: dict[str, Any]
    arms: dict[str, Any]
    p_values: dict[str, float | None]
    events: list[dict[str, Any]]


def _deployment_admin(p: Principal) -> None:
    if p.access.tenant is not None:
        raise ApiError(
            403, "forbidden", "profiles and experiments need an admin key without a tenant (they affect every tenant)"
        )


@contextmanager
def _api_errors(p: Principal) -> Iterator[None]:
    """Only a deployment admin; a profile or experiment error as 404 (unknown), 409 (another one
    runs, or not running) or 422 (invalid, naming the field)."""
    _deployment_admin(p)
    try:
        yield
    except (ProfileNotFound, ExperimentNotFound) as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except ExperimentConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except GroundworkError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None


@router.get("/v1/profiles", response_model=list[ProfileOut], responses=AUTH_ERRORS)
def profiles_list(p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """Every version of every profile."""
    with _api_errors(p):
        return [x.to_dict() for x in svc.profiles.list()]


@router.post("/v1/profiles", response_model=ProfileOut, status_code=201, responses=_ERRORS)
def profiles_create(req: ProfileIn, p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """Store a profile (the next version of its name); an unknown or invalid setting is a 422 naming it."""
    with _api_errors(p):
        return svc.profiles.create(req.name, req.override, p.name).to_dict()


@router.get("/v1/profiles/{ref}", response_model=ProfileOut, responses=_ERRORS)
def profiles_show(ref: str, p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """One profile: ``name`` (newest version) or ``name@version``."""
    with _api_errors(p):
        return svc.profiles.get(ref).to_dict()


@router.get("/v1/experiments", response_model=list[ExperimentOut], responses=AUTH_ERRORS)
def experiments_list(p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """Every experiment, newest first."""
    with _api_errors(p):
        return [e.to_dict() for e in svc.experiments.list()]


@router.post("/v1/experiments", response_model=ExperimentOut, status_code=201, responses=_ERRORS)
def experiments_start(req: ExperimentIn, p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """Start an experiment (409 while another runs); with ``canary``, a canary."""
    with _api_errors(p):
        canary = CanaryThresholds(**req.canary.model_dump()) if req.canary else None
        exp = start_experiment(
            svc.profiles, svc.experiments, req.control, req.treatment, req.share, canary, p.name, svc.settings
        )
        return exp.to_dict()


@router.get("/v1/experiments/{experiment_id}", response_model=StatusOut, responses=_ERRORS)
def experiments_status(experiment_id: str, p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """Per-arm figures, p-values and events (``current`` for the running experiment)."""
    with _api_errors(p):
        return experiment_status(svc.experiments, svc.kb.audit, None if experiment_id == "current" else experiment_id)


def _end(svc: Service, p: Principal, experiment_id: str, outcome: str, reason: str) -> Any:
    with _api_errors(p):
        return finish(svc.profiles, svc.experiments, svc.kb.audit, experiment_id, outcome, p.name, reason).to_dict()


@router.post("/v1/experiments/{experiment_id}/promote", response_model=ExperimentOut, responses=_ERRORS)
def experiments_promote(
    experiment_id: str, req: EndIn | None = None, p: Principal = ADMIN, svc: Service = SERVICE
) -> Any:
    """End the experiment; the treatment becomes the default profile."""
    return _end(svc, p, experiment_id, "promoted", (req.reason if req else "") or "promoted")


@router.post("/v1/experiments/{experiment_id}/stop", response_model=ExperimentOut, responses=_ERRORS)
def experiments_stop(experiment_id: str, req: EndIn | None = None, p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """End the experiment; all traffic returns to the control (the default profile)."""
    return _end(svc, p, experiment_id, "stopped", (req.reason if req else "") or "stopped")
