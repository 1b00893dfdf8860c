"""Incident intake: register with a GPS location; PostGIS assigns the cell in the same transaction."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify

from geogrid.api import openapi
from geogrid.api.auth import access
from geogrid.api.context import db, principal, state
from geogrid.api.params import json_body, optional, required
from geogrid.errors import InvalidInput, NotFound
from geogrid.incidents.intake import NewIncident, register, summary
from geogrid.store.models import SOURCES

bp = Blueprint("incidents", __name__, url_prefix="/api")

_NEW = {
    "type": "object",
    "required": ["lon", "lat", "category", "source"],
    "properties": {
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "category": {"type": "string"},
        "source": {"type": "string", "enum": list(SOURCES)},
        "description": {"type": "string", "maxLength": 10000},
        "reporter": {"type": "string"},
        "reported_at": {"type": "string", "format": "date-time"},
        "gps_accuracy_m": {"type": "number", "minimum": 0},
        "external_id": {"type": "string"},
    },
}
_SUMMARY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "grid_code": {"type": ["string", "null"]},
        "assignment": {"type": "string", "enum": ["inside", "snapped", "unassigned"]},
        "snap_distance_m": {"type": ["number", "null"]},
        "deadline": {"type": "string"},
    },
}


@bp.post("/incidents")
@access("admin", "operator", "worker")
@openapi.doc(body=_NEW, response=_SUMMARY, status=201)
def create():
    """Register an incident; the answer says which cell it went to (or that none did)."""
    body = json_body()
    reported_at = optional(body, "reported_at", str)
    try:
        when = dt.datetime.fromisoformat(reported_at) if reported_at else None
    except ValueError:
        raise InvalidInput(f"reported_at is not an ISO date-time: {reported_at!r}") from None
    incident = NewIncident(
        lon=_number(body, "lon"), lat=_number(body, "lat"),
        category=required(body, "category", str), source=required(body, "source", str),
        description=optional(body, "description", str) or "", reporter=optional(body, "reporter", str),
        reported_at=when, gps_accuracy_m=_number(body, "gps_accuracy_m", optional_=True),
        external_id=optional(body, "external_id", str),
    )  # fmt: skip
    with db() as conn:
        out = register(conn, state().settings, incident, actor=principal().name)
    return jsonify(out), 200 if out.get("duplicate") else 201


@bp.get("/incidents/<int:incident_id>")
@access("admin", "operator", "supervisor")
@openapi.doc(response=_SUMMARY)
def get(incident_id: int):
    """One incident: its cell (and grid version), status and deadline."""
    with db() as conn:
        exists = conn.exec_driver_sql("SELECT 1 FROM incidents WHERE id = %(id)s", {"id": incident_id}).first()
        if exists is None:
            raise NotFound(f"no incident {incident_id}")
        return jsonify(summary(conn, incident_id))


def _number(body: dict, name: str, optional_: bool = False):
    value = body.get(name)
    if value is None and optional_:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"field {name!r} must be a number")
    return float(value)
