"""A grid worker's own day, for their phone: the page, their cells and how far each is, their cases; and the
photos workers and the center attach to cases and 补签 requests.

Workers land on ``/worker`` after signing in. Everything the page does goes through the
JSON API, with the worker's own scope: their cells (from their duties), the cases
dispatched to them or that they registered, their 补签 requests and their track.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify, request
from flask_babel import gettext as _
from shapely.geometry import shape

from geogrid import inputs, photos
from geogrid.api import i18n, openapi
from geogrid.api.auth import access
from geogrid.api.context import db, principal, state
from geogrid.api.labels import category_picker
from geogrid.api.maps import map_page
from geogrid.errors import Forbidden, InvalidInput, NotFound
from geogrid.incidents.queries import worker_cases
from geogrid.incidents.workflow import DELAYS, TRANSITIONS, WORKER_STEPS, worker_standing
from geogrid.layers.worker import worker_map
from geogrid.patrols import repairs
from geogrid.patrols.compute import prepare_day
from geogrid.patrols.queries import person_day, tracks_geojson

bp = Blueprint("worker", __name__)

#: Who attaches photos to a case: the center, and grid workers to their own cases.
PHOTO_TAKERS = ("admin", "operator", "worker")
#: Who sees photos: those who read cases, and workers their own.
PHOTO_VIEWERS = ("admin", "operator", "supervisor", "worker")


@bp.get("/worker")
@access("worker")
def worker_page():
    """The grid worker's page: today's cells done and to do, their position, cases, reports, 补签 and track."""
    settings = state().settings
    who = principal()
    with db() as conn:
        day = inputs.optional_day(request.args.get("date")) or today()
        cells, notice = my_day(conn, day, who.person_id)
    m, config = worker_map(settings, _bounds(cells), cells=cells)
    config["tracks"] = cells.pop("tracks")
    config = {**config, "day": day.isoformat(), "today": today().isoformat(), "counts": cells["counts"],
              "classes": category_picker(), "transitions": {k: list(v) for k, v in TRANSITIONS.items()},
              "worker_steps": WORKER_STEPS, "delays": list(DELAYS), "repair_limit": settings.repair_limit,
              "photo_max_bytes": settings.photo_max_bytes, "photos_per_item": settings.photos_per_item,
              "rule_visits": settings.rule_visits}  # fmt: skip
    return map_page("worker.html", m, config, title=_("My day"), day=day.isoformat(), today=config["today"],
                    counts=cells["counts"], day_notice=notice, has_cells=bool(cells["features"]),
                    photos_per_item=settings.photos_per_item, repair_limit=settings.repair_limit)  # fmt: skip


@bp.get("/api/me/day")
@access("worker")
@openapi.doc(query={"date": {"type": "string", "format": "date", "description": "default: today"}},
             response={"type": "object", "properties": {"type": {"const": "FeatureCollection"}}})  # fmt: skip
def my_day_api():
    """The worker's own cells for a day, each ``done``, ``repaired`` (by an approved 补签) or ``todo``, with the
    visits so far, the visits the rule counts and why it is not done yet."""
    day = inputs.optional_day(request.args.get("date")) or today()
    with db() as conn:
        cells, notice = my_day(conn, day, principal().person_id)
    return jsonify({**cells, "notice": notice})


@bp.get("/api/me/cases")
@access("worker")
@openapi.doc(response={"type": "array"})
def my_cases():
    """The worker's open cases: dispatched to them or registered by them, overdue first."""
    who = principal()
    with db() as conn:
        return jsonify(worker_cases(conn, who.person_id, who.name))


def today() -> dt.date:
    """Today in the center's time zone."""
    return inputs.today(state().settings.timezone)


def my_day(conn, day: dt.date, person: int) -> tuple[dict, str | None]:
    """A worker's cells for *day*, brought up to date first (the one place this request does it), and a notice
    for a day that has nothing to show yet."""
    settings = state().settings
    notice = None
    try:
        prepare_day(conn, settings, day)  # no track yet today: nothing computed, every cell still to do
    except InvalidInput as err:  # a day to come
        notice = i18n.translate_error(err.template, err.extra)
    cells = person_day(conn, settings, day, person)
    # The worker's own tracks of the day, as the server has them (the page adds what it has not sent yet).
    cells["tracks"] = tracks_geojson(conn, settings, day, person=person)
    return cells, notice


def _bounds(cells: dict) -> tuple[float, float, float, float] | None:
    boxes = [shape(f["geometry"]).bounds for f in cells["features"]]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


# -- photos ------------------------------------------------------------------------------

_PHOTO = {"type": "object", "properties": {
    "id": {"type": "integer"}, "content_type": {"type": "string"}, "size": {"type": "integer"},
    "lon": {"type": ["number", "null"]}, "lat": {"type": ["number", "null"]},
    "taken_at": {"type": ["string", "null"]},
    "distance_m": {"type": ["number", "null"], "description": "from the case's location to where it was taken"},
    "url": {"type": "string"}}}  # fmt: skip


def _photo_body() -> bytes:
    data = request.get_data(cache=False)
    if not data:
        raise InvalidInput("the photo is empty; send the image file as the body")
    return data


def may_see_case(conn, incident_id: int) -> set[str]:
    """A worker's standing on a case; other roles pass. A case that is not theirs is not found, as one that does
    not exist: guessing ids tells a worker nothing."""
    who = principal()
    if who.role != "worker":
        return set()
    standing = worker_standing(conn, incident_id, who.person_id, who.name)
    if not standing:
        raise NotFound("no incident {incident_id}", incident_id=incident_id)
    return standing


@bp.post("/api/incidents/<int:incident_id>/photos")
@access(*PHOTO_TAKERS)
@openapi.doc(query={"note": {"type": "string"}}, response=_PHOTO, status=201)
def case_photo(incident_id: int):
    """Attach a photo (the JPEG, PNG or WebP file as the body) to a case (workers: to their own); its EXIF
    position and time are read when present."""
    with db() as conn:
        may_see_case(conn, incident_id)
        data = _photo_body()
        made = photos.attach(conn, state().settings, data, actor=principal().name, incident_id=incident_id,
                             note=request.args.get("note", ""))  # fmt: skip
    return jsonify(made), 201


@bp.post("/api/patrols/repairs/<int:repair_id>/photos")
@access("admin", "supervisor", "worker")
@openapi.doc(query={"note": {"type": "string"}}, response=_PHOTO, status=201)
def repair_photo(repair_id: int):
    """Attach a photo (the image file as the body) to a 补签 request (workers: to their own, while it waits for a
    decision)."""
    who = principal()
    with db() as conn:
        asked = repairs.get_repair(conn, repair_id)
        if who.role == "worker" and asked["person_id"] != who.person_id:
            raise Forbidden("a worker adds photos only to their own requests")
        if who.role == "worker" and asked["status"] != "pending":
            raise InvalidInput("the request is decided already; photos go with a request waiting for a decision")
        data = _photo_body()
        made = photos.attach(conn, state().settings, data, actor=who.name, repair_id=repair_id,
                             note=request.args.get("note", ""))  # fmt: skip
    return jsonify(made), 201


@bp.get("/api/photos/<int:photo_id>")
@access(*PHOTO_VIEWERS)
@openapi.doc(query={"size": {"type": "string", "enum": ["full", "thumb"], "description": "thumb: at most 320 px"}},
             response={"type": "string", "format": "binary"}, media_type="image/jpeg")  # fmt: skip
def photo(photo_id: int):
    """A photo as it was sent, or its small copy (``?size=thumb``)."""
    size = request.args.get("size") or "full"
    if size not in ("full", "thumb"):
        raise InvalidInput("size is full or thumb, not {size!r}", size=size)
    who = principal()
    with db() as conn:
        body, kind, owner = photos.photo_file(conn, photo_id, thumb=size == "thumb")
        if who.role == "worker":
            if owner["incident_id"] is not None:
                may_see_case(conn, owner["incident_id"])
            elif repairs.get_repair(conn, owner["repair_id"])["person_id"] != who.person_id:
                raise Forbidden("a worker sees the photos of their own requests only")
        elif who.role == "operator" and owner["repair_id"] is not None:
            raise Forbidden("补签 photos are for the worker and their supervisors")
    return body, 200, {"Content-Type": kind, "Content-Disposition": f'inline; filename="photo-{photo_id}"'}
