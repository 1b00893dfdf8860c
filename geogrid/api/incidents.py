"""Incident intake: register with a GPS location; PostGIS assigns the cell in the same transaction."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, jsonify, request

from geogrid import accounts, inputs
from geogrid.api import openapi
from geogrid.api.auth import ANY_ROLE, access
from geogrid.api.context import db, principal, state
from geogrid.api.labels import in_chinese
from geogrid.api.params import json_body, optional, query_int, required
from geogrid.errors import Forbidden, InvalidInput
from geogrid.grids import hierarchy
from geogrid.incidents import board as board_queues
from geogrid.incidents import export, judgement, kpis, taxonomy, workflow
from geogrid.incidents.intake import NewIncident, register
from geogrid.incidents.metrics import early_warnings, metrics
from geogrid.incidents.queries import list_incidents, statuses
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
        "external_id": {
            "type": "string",
            "description": "its id in the system it comes from; the same id and "
            "content again is answered 200 with duplicate, another content with 409",
        },
        "system": {"type": "string", "description": "the system the external id belongs to (default: the source)"},
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
    when = inputs.moment(optional(body, "reported_at", str), "reported_at", state().settings.timezone)
    incident = NewIncident(
        lon=_number(body, "lon"), lat=_number(body, "lat"),
        category=required(body, "category", str), source=required(body, "source", str),
        description=optional(body, "description", str) or "", reporter=optional(body, "reporter", str),
        reported_at=when, gps_accuracy_m=_number(body, "gps_accuracy_m", optional_=True),
        external_id=optional(body, "external_id", str), system=optional(body, "system", str),
    )  # fmt: skip
    who = principal()
    with db() as conn:
        # A worker's own ids are theirs: two terminals may number their reports alike.
        out = register(conn, state().settings, incident, actor=who.name,
                       owner=who.name if who.role == "worker" else None)  # fmt: skip
        scope = accounts.visible_grid_codes(conn, who)
        if scope is not None and out.get("grid_code") not in scope:
            # Rolled back with the unit of work: a worker reports only inside their own grids.
            raise Forbidden("that point is outside the grids assigned to you; the command center registers it")
    return jsonify(out), 200 if out.get("duplicate") else 201


READERS = ("admin", "operator", "supervisor")
HANDLERS = ("admin", "operator")


@bp.get("/incidents")
@access(*READERS)
@openapi.doc(
    query={
        "status": {"type": "string", "description": "one or more states, comma separated"},
        "category": {
            "type": "string",
            "description": "a category code, its 4-digit event code (0501) or a "
            "2-digit major class (05): see /api/categories",
        },
        "grid": {"type": "string", "description": "a grid code: its incidents and those of grids below it"},
        "department": {"type": "string"},
        "bbox": {"type": "string"},
        "from": {"type": "string"},
        "to": {"type": "string", "description": "the last day (a date, included) or a moment (excluded)"},
        "overdue": {"type": "boolean"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
        "offset": {"type": "integer", "minimum": 0},
    },
    response={"type": "object", "properties": {"type": {"const": "FeatureCollection"}}},
    media_type="application/geo+json",
)
def index():
    """Incidents as GeoJSON, newest first, filtered and paginated; overdue ones are marked."""
    args = request.args
    filters = list_filters(args)
    with db() as conn:
        if filters["grid"]:
            hierarchy.require(conn, filters["grid"])
        body = list_incidents(conn, **filters, limit=query_int(args, "limit", 100),
                              offset=query_int(args, "offset", 0))  # fmt: skip
    return jsonify(body), 200, {"Content-Type": "application/geo+json"}


def list_filters(args) -> dict:
    """The incident filters of a request's query (status, category, grid, bbox, from, to, overdue), checked."""
    zone = state().settings.timezone
    overdue = args.get("overdue")
    if overdue not in (None, "true", "false"):
        raise InvalidInput("overdue must be true or false")
    return {
        "statuses": statuses(args.get("status")),
        "category": taxonomy.matching(args.get("category"), state().settings.categories_file),
        "grid": args.get("grid") or None, "department": args.get("department") or None,
        "bbox": inputs.bbox(args.get("bbox")), "start": inputs.since(args.get("from"), zone),
        "end": inputs.until(args.get("to"), zone), "overdue": None if overdue is None else overdue == "true",
    }  # fmt: skip


@bp.get("/incidents/<int:incident_id>")
@access(*READERS, "worker")
@openapi.doc(response=_SUMMARY)
def get(incident_id: int):
    """One incident with its cell, parent chain, responsible people, deadline, photos and history (workers: their
    own cases, dispatched to them or registered by them)."""
    from geogrid.api.worker import may_see_case
    from geogrid.incidents.queries import incident_detail

    with db() as conn:
        standing = may_see_case(conn, incident_id)
        detail = incident_detail(conn, incident_id)
        if principal().role == "worker":
            detail["standing"] = sorted(standing)
    # How long the handler gets when it is dispatched now: its category's hours at its level.
    category = taxonomy.categories(state().settings.categories_file).get(detail["category"])
    detail["dispatch_hours"] = category.hours_at(detail.get("escalation_level")) if category else None
    return jsonify(detail)


@bp.post("/incidents/<int:incident_id>/transition")
@access(*HANDLERS, "worker")
@openapi.doc(
    body={
        "type": "object",
        "required": ["to"],
        "properties": {
            "to": {"type": "string", "enum": list(workflow.TRANSITIONS)},
            "note": {"type": "string", "description": "the reason, required for rejected, rework and pending"},
            "department": {"type": "string"},
            "person_id": {"type": "integer", "description": "dispatched: the person who handles it"},
            "review_at": {"type": "string", "description": "pending (挂账): when it is looked at again"},
        },
    },
    response={"type": "object"},
)
def transition(incident_id: int):
    """Move a case on by the case flow (立案, 派遣, 处置, 反馈, 核查 -> 结案 or 返工, 上报, 挂账, 不予立案); 409 if not
    allowed from its state. Grid workers: 接单 (in_progress) and 处理反馈 (resolved) on cases dispatched to them,
    一级处置 (handled_on_spot) on cases they registered."""
    body = json_body()
    zone = state().settings.timezone
    with db() as conn:
        _worker_may(conn, incident_id, required(body, "to", str))
        event = workflow.transition(
            conn, state().settings, incident_id, required(body, "to", str), actor=principal().name,
            note=optional(body, "note", str) or "", department=optional(body, "department", str),
            person_id=optional(body, "person_id", int),
            review_at=inputs.at(optional(body, "review_at", str), zone, "review_at"),
        )  # fmt: skip
    return jsonify(event)


@bp.post("/incidents/<int:incident_id>/delay")
@access(*HANDLERS, "worker")
@openapi.doc(
    body={"type": "object", "required": ["kind", "reason"], "properties": {
        "kind": {"type": "string", "enum": list(workflow.DELAYS), "description": "extend (延期) or postpone (缓办)"},
        "reason": {"type": "string"}, "hours": {"type": "number", "description": "extend: hours more"},
        "until": {"type": "string", "description": "postpone: the day or moment it resumes"}}},
    response={"type": "object"}, status=201,
)  # fmt: skip
def delay(incident_id: int):
    """A handler asks for more time (延期 or 缓办) with a reason; the center decides. Grid workers ask on cases
    dispatched to them."""
    body = json_body()
    hours = body.get("hours")
    if hours is not None and (isinstance(hours, bool) or not isinstance(hours, int | float)):
        raise InvalidInput("field 'hours' must be a number")
    with db() as conn:
        _worker_may(conn, incident_id, "delay")
        event = workflow.request_delay(
            conn, incident_id, actor=principal().name, kind=required(body, "kind", str),
            reason=required(body, "reason", str), hours=hours,
            until=inputs.at(optional(body, "until", str), state().settings.timezone, "until"),
        )  # fmt: skip
    return jsonify(event), 201


def _worker_may(conn, incident_id: int, step: str) -> None:
    """Refuse a grid worker a step that is not theirs to take on this case (other roles pass); a case that is
    not theirs at all is not found, as one that does not exist."""
    from geogrid.api.worker import may_see_case

    who = principal()
    if who.role != "worker":
        return
    needed = "handler" if step == "delay" else workflow.WORKER_STEPS.get(step)
    if needed is None:
        raise Forbidden("a grid worker's role may take up (in_progress), report back (resolved) or handle on the "
                        "spot (handled_on_spot), not {step!r}", step=step)  # fmt: skip
    standing = may_see_case(conn, incident_id)
    if needed not in standing and needed == "handler":
        raise Forbidden("only the worker it is dispatched to may do this")
    if needed not in standing:
        raise Forbidden("only the worker who registered the case may handle it on the spot")


@bp.post("/incidents/<int:incident_id>/delay/decision")
@access(*HANDLERS)
@openapi.doc(
    body={"type": "object", "required": ["approve"],
          "properties": {"approve": {"type": "boolean"}, "note": {"type": "string"}}},
    response={"type": "object"},
)  # fmt: skip
def delay_decision(incident_id: int):
    """The center approves or refuses the open request for more time."""
    body = json_body()
    with db() as conn:
        event = workflow.decide_delay(conn, incident_id, actor=principal().name,
                                      approve=required(body, "approve", bool),
                                      note=optional(body, "note", str) or "")  # fmt: skip
    return jsonify(event)


@bp.post("/incidents/<int:incident_id>/supervise")
@access(*HANDLERS, "supervisor")
@openapi.doc(body={"type": "object", "properties": {"note": {"type": "string"}}}, response={"type": "object"},
             status=201)  # fmt: skip
def supervise(incident_id: int):
    """督办: a supervision notice on an overdue case to its handler and their superiors (409 when not overdue)."""
    body = json_body()
    with db() as conn:
        event = workflow.supervise(conn, incident_id, actor=principal().name, note=optional(body, "note", str) or "")
    return jsonify(event), 201


@bp.post("/incidents/<int:incident_id>/visit")
@access(*HANDLERS)
@openapi.doc(
    body={
        "type": "object",
        "required": ["method", "satisfied"],
        "properties": {
            "method": {"type": "string", "enum": list(workflow.VISIT_METHODS)},
            "satisfied": {"type": "boolean"},
            "note": {"type": "string"},
        },
    },
    response={"type": "object"},
)
def visit(incident_id: int):
    """Record the return visit: satisfied closes the incident, unsatisfied reopens it."""
    body = json_body()
    with db() as conn:
        event = workflow.return_visit(
            conn, incident_id, actor=principal().name, method=required(body, "method", str),
            satisfied=required(body, "satisfied", bool), note=optional(body, "note", str) or "",
        )  # fmt: skip
    return jsonify(event)


@bp.get("/metrics")
@access(*READERS)
@openapi.doc(
    query={"level": {"type": "string"}, "grid": {"type": "string"}, "from": {"type": "string"},
           "to": {"type": "string", "description": "the last day (a date, included) or a moment (excluded)"}},
    response={"type": "array", "items": {"type": "object"}},
)  # fmt: skip
def indicators():
    """Registered, handled on the spot, escalated, closed and the four rates, per grid of a level."""
    settings, args = state().settings, request.args
    level = inputs.level(args.get("level"), settings.levels) or settings.levels[0]
    zone = settings.timezone
    start, end = inputs.since(args.get("from"), zone), inputs.until(args.get("to"), zone)
    within = args.get("grid") or None
    with db() as conn:
        if within:
            hierarchy.require(conn, within)
        rows = metrics(conn, level=level, within=within, start=start, end=end)
    return jsonify(rows)


@bp.get("/cases/board")
@access(*READERS)
@openapi.doc(
    query={"queue": {"type": "string", "enum": list(board_queues.NAMES)},
           "grid": {"type": "string"}, "category": {"type": "string"}, "department": {"type": "string"},
           "person": {"type": "integer"},
           "limit": {"type": "integer", "minimum": 1, "maximum": board_queues.MAX_LIMIT}},
    response={"type": "object"},
)  # fmt: skip
def case_board():
    """The case board: how many cases wait at each stage (and how many are overdue), and one queue's cases,
    overdue first, then by the time left."""
    args = request.args
    person = args.get("person")
    if person not in (None, "") and not person.isdigit():
        raise InvalidInput("person must be a person's id, not {person!r}", person=person)
    with db() as conn:
        if args.get("grid"):
            hierarchy.require(conn, args["grid"])
        body = board_queues.board(
            conn, queue=args.get("queue") or None, grid=args.get("grid") or None,
            categories=taxonomy.matching(args.get("category"), state().settings.categories_file),
            department=args.get("department") or None, person=int(person) if person else None,
            limit=query_int(args, "limit", 50),
        )  # fmt: skip
        body["departments"] = (
            conn.execute(sa.text("SELECT DISTINCT department FROM incidents WHERE department IS NOT NULL ORDER BY 1"))
            .scalars()
            .all()
        )
        # The people cases are dispatched to, for the board's person filter.
        handlers = sa.text(
            "SELECT p.id, p.name, p.phone FROM people p WHERE EXISTS "
            "(SELECT 1 FROM incidents i WHERE i.handler_person_id = p.id) ORDER BY p.name, p.id"
        )
        body["handlers"] = [dict(r) for r in conn.execute(handlers).mappings()]
    return jsonify(body)


@bp.get("/categories")
@access(*ANY_ROLE)  # a worker's report form needs it too
@openapi.doc(response={"type": "array", "items": {"type": "object"}})
def list_categories():
    """The incident taxonomy: major classes (2-digit codes) with their categories (2-digit minor codes)."""
    return jsonify([
        {"code": k.code, "zh": k.zh, "en": k.en, "categories": [
            {"code": c.code, "event_code": c.class_code, "minor": c.minor, "zh": c.zh, "en": c.en,
             "deadline_hours": c.deadline_hours, "level_hours": dict(c.level_hours)} for c in k.categories]}
        for k in taxonomy.classes(state().settings.categories_file)
    ])  # fmt: skip


def _period(args) -> tuple:
    """A period's [from, to) from the query: dates (``to`` included) or moments; default the last 7 days."""
    zone = state().settings.timezone
    end = inputs.until(args.get("to"), zone)
    start = inputs.since(args.get("from"), zone)
    if end is None:
        end = dt.datetime.combine(dt.datetime.now(ZoneInfo(zone)).date(), dt.time.min, tzinfo=ZoneInfo(zone))
        end += dt.timedelta(days=1)
    start = start or end - dt.timedelta(days=7)
    return start, end


@bp.get("/indicators")
@access(*READERS)
@openapi.doc(
    query={"by": {"type": "string", "enum": list(kpis.BY)},
           "level": {"type": "string", "description": "by grid: the level whose grids are the units (default the top)"},
           "from": {"type": "string"},
           "to": {"type": "string", "description": "the last day (a date, included) or a moment (excluded)"},
           "limit": {"type": "integer", "minimum": 1,
                     "description": "only the first units of the ranking (default all); `count` says how many"}},
    response={"type": "object"},
)  # fmt: skip
def case_indicators():
    """The case indicators of docs/kpis.md (立案率, 结案率, 按期结案率 ...) per unit, ranked (综合评价); the total."""
    settings = state().settings
    start, end = _period(request.args)
    by = request.args.get("by") or "grid"
    level = inputs.level(request.args.get("level"), settings.levels) or settings.levels[0]
    limit = query_int(request.args, "limit", None) if request.args.get("limit") else None
    if limit is not None and limit < 1:
        raise InvalidInput("limit must be 1 or more")
    with db() as conn:
        units = kpis.indicators(conn, start=start, end=end, by=by, level=level, levels=settings.levels, named=False)
        ranked = kpis.ranking(units, dict(settings.kpi_weights), settings.kpi_min_cases)
        shown = kpis.name(conn, ranked[:limit], end)  # names only for the units in the answer
    return jsonify({"from": start.isoformat(), "to": end.isoformat(), "by": by,
                    "level": level if by == "grid" else None, "weights": dict(settings.kpi_weights),
                    "count": len(ranked), "total": kpis.total(units), "units": shown})  # fmt: skip


@bp.get("/indicators/trend")
@access(*READERS)
@openapi.doc(
    query={"from": {"type": "string", "description": "default: 8 weeks before `to`"},
           "to": {"type": "string", "description": "the last day (a date, included) or a moment (excluded)"},
           "step": {"type": "string", "enum": list(kpis.STEPS), "description": "default week"}},
    response={"type": "object"},
)  # fmt: skip
def indicator_trend():
    """The whole area's indicators per day, week or month (each period's cases as they stood at its end)."""
    zone = state().settings.timezone
    args = request.args
    start, end = _period(args)
    step = args.get("step") or "week"
    if not args.get("from"):
        start = end - dt.timedelta(days={"day": 14, "week": 56, "month": 365}.get(step, 56))
    with db() as conn:
        series = kpis.trend(conn, start=start.astimezone(ZoneInfo(zone)), end=end, step=step)
    return jsonify({"from": start.isoformat(), "to": end.isoformat(), "step": step, "periods": series})


@bp.get("/judgement")
@access(*READERS)
@openapi.doc(
    query={"date": {"type": "string", "description": "the day (default yesterday, in the center's time zone)"},
           "level": {"type": "string", "description": "the level whose grids are the areas (default the second)"}},
    response={"type": "object"},
)  # fmt: skip
def daily_judgement():
    """每天汇总研判: a day's cases by category and area, new early warnings, cases common to many places, the
    overdue list."""
    return jsonify(judgement_of(request.args))


@bp.get("/judgement.xlsx")
@access(*READERS)
@openapi.doc(query={"date": {"type": "string"}, "level": {"type": "string"}},
             media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")  # fmt: skip
def daily_judgement_workbook():
    """The daily judgement as an Excel workbook (a sheet per part, Chinese headers)."""
    from geogrid.incidents.taxonomy import categories

    report = judgement_of(request.args)
    names = categories(state().settings.categories_file)
    data = judgement.workbook(report, lambda c: names[c].zh if c in names else c,
                              lambda s: in_chinese("status", s))  # fmt: skip
    return data, 200, {"Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       "Content-Disposition": f'attachment; filename="judgement-{report["day"]}.xlsx"'}  # fmt: skip


def judgement_of(args) -> dict:
    """The daily judgement for a request's ``date`` (default yesterday) and ``level`` (default the second)."""
    settings = state().settings
    zone = ZoneInfo(settings.timezone)
    day = inputs.day(args["date"]) if args.get("date") else dt.datetime.now(zone).date() - dt.timedelta(days=1)
    default = settings.levels[1] if len(settings.levels) > 1 else settings.levels[0]
    level = inputs.level(args.get("level"), settings.levels) or default
    with db() as conn:
        return judgement.daily(conn, day=day, zone=settings.timezone, level=level,
                               categories_file=settings.categories_file)  # fmt: skip


@bp.get("/indicators.xlsx")
@access(*READERS)
@openapi.doc(query={"from": {"type": "string"}, "to": {"type": "string"}},
             media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")  # fmt: skip
def indicator_workbook():
    """The period's indicators as an Excel workbook: Chinese headers, a sheet per level and one for departments."""
    settings = state().settings
    start, end = _period(request.args)
    with db() as conn:
        data = export.indicator_workbook(conn, settings, start, end, lambda level: in_chinese("level", level))
    name = f"indicators-{start.date().isoformat()}-{(end - dt.timedelta(microseconds=1)).date().isoformat()}.xlsx"
    return data, 200, {"Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       "Content-Disposition": f'attachment; filename="{name}"'}  # fmt: skip


@bp.get("/incidents/warnings")
@access(*READERS)
@openapi.doc(response={"type": "object"})
def warnings():
    """Cells where a category is rising well above its own baseline, and widespread categories."""
    with db() as conn:
        return jsonify(early_warnings(conn))


def _number(body: dict, name: str, optional_: bool = False):
    value = body.get(name)
    if value is None and optional_:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("field {name!r} must be a number", name=name)
    try:
        return float(value)
    except OverflowError:  # an integer with hundreds of digits
        raise InvalidInput("field {name!r} is out of range", name=name) from None
