"""Patrol coverage for supervisors: per cell and worker for a day, rolled up, and what was missed."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from geogrid import inputs
from geogrid.api import i18n, openapi
from geogrid.api.auth import access
from geogrid.api.context import db, state
from geogrid.errors import InvalidInput
from geogrid.grids import hierarchy
from geogrid.patrols.compute import day_moment, day_window, prepare_day
from geogrid.patrols.queries import coverage_gaps, coverage_report, replay_fixes, tracks_geojson

bp = Blueprint("coverage", __name__, url_prefix="/api")
READERS = ("admin", "supervisor")


@bp.get("/coverage")
@access(*READERS)
@openapi.doc(
    query={"date": {"type": "string", "format": "date"}, "level": {"type": "string"}, "grid": {"type": "string"}},
    response={"type": "object", "properties": {"cells": {"type": "array"}, "workers": {"type": "array"}}},
)
def report():
    """Coverage of a day: per cell and person (fraction, visits, rule), per worker, and rolled up to a level."""
    settings = state().settings
    day = inputs.day(request.args.get("date"))
    level = inputs.level(request.args.get("level"), settings.levels)
    grid = request.args.get("grid") or None
    with db() as conn:
        if grid:
            hierarchy.require(conn, grid, day_moment(settings, day))
        prepare_day(conn, settings, day)  # the one place a request brings the day up to date
        report = coverage_report(conn, settings, day, level=level, grid=grid, gettext=i18n.gettext)
    return jsonify(report)


@bp.get("/coverage/gaps")
@access(*READERS)
@openapi.doc(
    query={"date": {"type": "string", "format": "date"}, "grid": {"type": "string"}},
    response={"type": "object", "properties": {"type": {"const": "FeatureCollection"}}},
    media_type="application/geo+json",
)
def gaps():
    """The parts of cells nobody patrolled within sight that day, as GeoJSON with their m²."""
    settings = state().settings
    day = inputs.day(request.args.get("date"))
    grid = request.args.get("grid") or None
    with db() as conn:
        if grid:
            hierarchy.require(conn, grid, day_moment(settings, day))
        notice = prepare_day(conn, settings, day)
        body = coverage_gaps(conn, settings, day, grid=grid) if notice is None else {
            "type": "FeatureCollection", "date": day.isoformat(), "features": []}  # fmt: skip
        body["notice"] = notice.text(i18n.gettext) if notice is not None else None
    return jsonify(body), 200, {"Content-Type": "application/geo+json"}


@bp.get("/coverage/tracks")
@access(*READERS)
@openapi.doc(
    query={"date": {"type": "string", "format": "date"}, "grid": {"type": "string"},
           "person": {"type": "integer", "description": "one worker's tracks"}},
    response={"type": "object", "properties": {"type": {"const": "FeatureCollection"}}},
    media_type="application/geo+json",
)  # fmt: skip
def tracks():
    """A day's tracks, one line per track (of a worker; near a grid), as the coverage page draws them."""
    settings = state().settings
    day = inputs.day(request.args.get("date"))
    grid = request.args.get("grid") or None
    person = request.args.get("person")
    if person not in (None, "") and not person.isdigit():
        raise InvalidInput("person must be a person's id, not {person!r}", person=person)
    with db() as conn:
        if grid:
            hierarchy.require(conn, grid, day_moment(settings, day))
        body = tracks_geojson(conn, settings, day, grid=grid, person=int(person) if person else None)
    return jsonify(body), 200, {"Content-Type": "application/geo+json"}


@bp.get("/coverage/fixes")
@access(*READERS)
@openapi.doc(
    query={"date": {"type": "string", "format": "date"}, "person": {"type": "integer"}},
    response={"type": "object", "properties": {"fixes": {"type": "array"}}},
)  # fmt: skip
def fixes():
    """One worker's kept fixes of a day in time order, ``[seconds since the day's start, lon, lat, track]`` each:
    what the coverage page replays."""
    settings = state().settings
    day = inputs.day(request.args.get("date"))
    person = request.args.get("person") or ""
    if not person.isdigit():
        raise InvalidInput("person must be a person's id, not {person!r}", person=person)
    with db() as conn:
        rows = replay_fixes(conn, settings, day, int(person))
    start = day_window(settings, day)[0]
    return jsonify({"date": day.isoformat(), "start": start.isoformat(), "person": int(person), "fixes": rows})
