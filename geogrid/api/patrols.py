"""Patrol uploads from terminals (the file is the request body; workers upload only their own), and the patrol
indicators."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify, request

from geogrid import inputs
from geogrid.api import openapi
from geogrid.api.auth import access
from geogrid.api.context import db, principal, state
from geogrid.api.params import json_body, optional, required
from geogrid.errors import Forbidden, InvalidInput
from geogrid.patrols import indicators as patrol_indicators
from geogrid.patrols import repairs
from geogrid.patrols.ingest import import_patrol
from geogrid.people import find_person

bp = Blueprint("patrols", __name__, url_prefix="/api")

_FORMATS = {"gpx": "track.gpx", "csv": "fixes.csv", "geojson": "track.geojson"}


@bp.post("/patrols")
@access("admin", "supervisor", "worker")
@openapi.doc(
    query={
        "person": {"type": "string", "description": "id, staff number or name (workers: themselves)"},
        "format": {"type": "string", "enum": list(_FORMATS)},
    },
    response={"type": "object", "properties": {"stored": {"type": "integer"}, "dropped": {"type": "object"}}},
    status=201,
)
def upload():
    """Upload a GPX, CSV or GeoJSON track as the body (?format=gpx|csv|geojson); the days it touched are brought
    up to date in the background (``days``)."""
    fmt = request.args.get("format", "").lower()
    if fmt not in _FORMATS:
        raise InvalidInput("say the file's format: ?format=gpx, csv or geojson")
    data = request.get_data(cache=False)
    if not data:
        raise InvalidInput("the request body is empty; send the file as the body")
    who = principal()
    with db() as conn:
        if who.role == "worker":
            person_id = who.person_id
            asked = request.args.get("person")
            if asked is not None and find_person(conn, asked) != person_id:
                raise Forbidden("a worker uploads only their own tracks")
        else:
            asked = request.args.get("person")
            if asked is None:
                raise InvalidInput("say whose track it is: ?person=<id, staff number or name>")
            person_id = find_person(conn, asked)
        report = import_patrol(conn, state().settings, person_id, _FORMATS[fmt], data)
    if state().refresher is not None and report.days:  # committed: the days it touched, in the background
        state().refresher.mark(dt.date.fromisoformat(d) for d in report.days)
    return jsonify(report.to_json()), 201


@bp.get("/patrols/indicators")
@access("admin", "supervisor")
@openapi.doc(
    query={"by": {"type": "string", "enum": list(patrol_indicators.BY)},
           "level": {"type": "string", "description": "by grid: the level whose grids are the units (default the top)"},
           "from": {"type": "string", "format": "date", "description": "default: 6 days before `to`"},
           "to": {"type": "string", "format": "date", "description": "the last day, included (default today)"}},
    response={"type": "object"},
)  # fmt: skip
def indicators():
    """巡查覆盖率, 巡查里程, 在岗时长 and missed days per worker or grid for a run of days (docs/kpis.md)."""
    settings = state().settings
    args = request.args
    end = inputs.optional_day(args.get("to"), "to") or inputs.today(settings.timezone)
    start = inputs.optional_day(args.get("from"), "from") or end - dt.timedelta(days=6)
    by = args.get("by") or "person"
    level = inputs.level(args.get("level"), settings.levels)
    with db() as conn:
        units = patrol_indicators.indicators(conn, settings, start=start, end=end, by=by, level=level)
    return jsonify({"from": start.isoformat(), "to": end.isoformat(), "by": by, "units": units})


@bp.post("/patrols/repairs")
@access("admin", "supervisor", "worker")
@openapi.doc(
    body={"type": "object", "required": ["grid_code", "date", "at", "reason"], "properties": {
        "grid_code": {"type": "string"}, "date": {"type": "string", "format": "date"},
        "at": {"type": "string", "description": "when the worker says they were there (on that day)"},
        "reason": {"type": "string"},
        "person_id": {"type": "integer", "description": "supervisors: whose; workers ask for themselves"}}},
    response={"type": "object"}, status=201,
)  # fmt: skip
def ask_repair():
    """补签: ask that a missed patrol of one of the worker's cells be counted (up to the monthly limit)."""
    body = json_body()
    who = principal()
    settings = state().settings
    if who.role == "worker":
        person = who.person_id
        if person is None:
            raise Forbidden("this worker's account names no person")
    else:
        person = required(body, "person_id", int)
    day = inputs.day(required(body, "date", str))
    at = inputs.at(required(body, "at", str), settings.timezone, "at")
    with db() as conn:
        made = repairs.request_repair(conn, settings, person_id=person, grid_code=required(body, "grid_code", str),
                                      day=day, claimed_at=at, reason=required(body, "reason", str),
                                      actor=who.name)  # fmt: skip
    return jsonify(made), 201


@bp.get("/patrols/repairs")
@access("admin", "supervisor", "worker")
@openapi.doc(query={"status": {"type": "string", "enum": ["pending", "approved", "refused"]},
                    "person": {"type": "integer"}}, response={"type": "array"})  # fmt: skip
def list_repairs():
    """The requests, newest first: a worker sees their own, pending, approved and refused alike."""
    who = principal()
    status = request.args.get("status") or None
    if status not in (None, "pending", "approved", "refused"):
        raise InvalidInput("status is pending, approved or refused, not {status!r}", status=status)
    person = request.args.get("person")
    if who.role == "worker":
        person = who.person_id
    elif person not in (None, ""):
        if not person.isdigit():
            raise InvalidInput("person must be a person's id, not {person!r}", person=person)
        person = int(person)
    else:
        person = None
    with db() as conn:
        return jsonify(repairs.list_repairs(conn, person_id=person, status=status))


@bp.post("/patrols/repairs/<int:repair_id>/decision")
@access("admin", "supervisor")
@openapi.doc(body={"type": "object", "required": ["approve"],
                   "properties": {"approve": {"type": "boolean"}, "note": {"type": "string"}}},
             response={"type": "object"})  # fmt: skip
def decide_repair(repair_id: int):
    """The supervisor approves or refuses a request (409 if decided already); an approved one counts for the rule."""
    body = json_body()
    with db() as conn:
        decided = repairs.decide_repair(conn, repair_id, approve=required(body, "approve", bool),
                                        note=optional(body, "note", str) or "", actor=principal().name)  # fmt: skip
    return jsonify(decided)
