"""Patrol coverage for supervisors: per cell and worker for a day, rolled up, and what was missed."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify, request

from geogrid.api import openapi
from geogrid.api.auth import access
from geogrid.api.context import db, state
from geogrid.errors import InvalidInput
from geogrid.patrols.coverage import coverage_gaps, coverage_report

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
    day = parse_day(request.args.get("date"))
    level = request.args.get("level")
    if level is not None and level not in state().settings.levels:
        raise InvalidInput(f"unknown level {level!r}; levels are {', '.join(state().settings.levels)}")
    with db() as conn:
        return jsonify(coverage_report(conn, state().settings, day, level=level, grid=request.args.get("grid")))


@bp.get("/coverage/gaps")
@access(*READERS)
@openapi.doc(
    query={"date": {"type": "string", "format": "date"}, "grid": {"type": "string"}},
    response={"type": "object", "properties": {"type": {"const": "FeatureCollection"}}},
    media_type="application/geo+json",
)
def gaps():
    """The parts of cells nobody patrolled within sight that day, as GeoJSON with their m²."""
    day = parse_day(request.args.get("date"))
    with db() as conn:
        body = coverage_gaps(conn, state().settings, day, grid=request.args.get("grid"))
    return jsonify(body), 200, {"Content-Type": "application/geo+json"}


def parse_day(text: str | None) -> dt.date:
    """The ``date`` query value as a date; 422 when missing or malformed."""
    if not text:
        raise InvalidInput("give the day: ?date=YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"date must be YYYY-MM-DD, not {text!r}") from None
