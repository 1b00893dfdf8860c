"""Patrol uploads from terminals: the file is the request body; workers upload only their own."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from geogrid.api import openapi
from geogrid.api.auth import access
from geogrid.api.context import db, principal, state
from geogrid.errors import Forbidden, InvalidInput
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
    """Upload a GPX, CSV or GeoJSON track as the body (?format=gpx|csv|geojson)."""
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
    return jsonify(report.to_json()), 201
