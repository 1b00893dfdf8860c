"""The demo township, sized like 西王庄乡 (DOMAIN.md), made with geogrid's own tools.

An irregular territory of about 15 km² with 18 villages round their settlements, cut
by ``generate_cells(shape="voronoi")`` into 18 village grids, 36 foundational grids
and 101 unit cells; 2 grid managers per foundational grid and 1 helper per cell; a
week of incidents (about 330: categories and sources as in DOMAIN.md) through the
standard case flow (立案, 派遣 to a department, 反馈, 核查 with some 返工, 结案 and 回访; some
handled on the spot, escalated, given more time, on the pending list, not accepted or
still overdue); and a
week of patrol tracks for every helper (mostly two a day, some cells missed, some GPS
noise) through the real import and cleaning. Everything follows from the seed.
"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid import accounts
from geogrid.config import Settings
from geogrid.grids import versions
from geogrid.grids.generate import generate_cells
from geogrid.incidents.intake import NewIncident, register
from geogrid.incidents.workflow import decide_delay, request_delay, return_visit, transition
from geogrid.patrols.compute import compute_coverage
from geogrid.patrols.ingest import import_patrol
from geogrid.people import assign_duty
from geogrid.store.models import Grid, User

ADMIN_NAME = "demo"
ADMIN_PASSWORD = "geogrid-demo"
#: A grid worker's account (the first village's first grid manager), to try the phone page with.
WORKER_NAME = "demo-worker"
WORKER_PASSWORD = "geogrid-demo"
CODE = "XWZ"
CENTRE = (115.25, 37.75)  # an invented place on the North China Plain
VILLAGES = ["西王庄", "东王庄", "南王庄", "北王庄", "李家屯", "张家营", "刘家庄", "赵家洼", "陈家集", "杨柳村",
            "小河村", "大河村", "前进村", "后寨村", "高庄", "马家店", "孙家桥", "周家坡"]  # fmt: skip
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红"
#: Categories and their share of the week's incidents; sources likewise (DOMAIN.md).
CATEGORIES = {"garbage": 14, "public_opinion": 10, "illegal_parking": 8, "rural_road_damage": 8, "water": 7,
              "property_management": 6, "uncivil_dog_keeping": 6, "flyposting": 5, "street_vending": 5,
              "illegal_construction": 5, "work_safety": 5, "power": 4, "public_matters": 4, "jobs": 3,
              "medical_care": 3, "petition_stability": 2, "illegal_business": 2, "heating": 1, "gas": 1,
              "public_facility_safety": 1}  # fmt: skip
SOURCES = {"patrol": 40, "phone": 15, "hotline": 15, "app": 12, "reception": 10, "home_visit": 8}
DEPARTMENTS = ["城管", "住建", "交通", "水务", "市场监管", "卫健", "应急管理"]


def load(conn: Connection, settings: Settings, *, seed: int = 20261120, days: int = 7,
         today: dt.date | None = None, progress=lambda message: None) -> dict:  # fmt: skip
    """Build the demo township unless it is there; returns the counts. Idempotent."""
    if conn.execute(sa.select(Grid.id).where(Grid.code == CODE)).first() is not None:
        return counts(conn)
    if settings.levels != ("township", "village", "grid", "cell"):
        raise ValueError("the demo township needs GEOGRID_LEVELS=township,village,grid,cell")
    rng = np.random.default_rng(seed)
    zone = ZoneInfo(settings.timezone)
    today = today or dt.datetime.now(zone).date()
    # The grids and duties stand from the start of the week the demo plays out, so each
    # past day's coverage and indicators use them (a past day uses that day's boundaries).
    start = dt.datetime.combine(today - dt.timedelta(days=days), dt.time(0, 0), tzinfo=zone)
    territory, homes, _ = _territory(rng)
    versions.insert(conn, CODE, "西王庄乡（示范）", "township", None, territory, {}, at=start)
    weights = [(x, y, 1.0) for x, y in homes]
    progress("grids: 18 villages, 36 grids, 101 cells")

    def generate(parent: str, k: int, names) -> list[str]:
        made = generate_cells(conn, settings, parent, shape="voronoi", balanced=k, weights=weights, names=names,
                              at=start)  # fmt: skip
        return list(made.created)

    village_names = [name if name.endswith("村") else name + "村" for name in VILLAGES]
    villages = generate(CODE, 18, lambda n: village_names[n - 1])
    grids = []
    for village, name in zip(villages, village_names, strict=True):
        grids += [(code, f"{name} 第{n}网格") for n, code in
                  enumerate(generate(village, 2, lambda n, name=name: f"{name} 第{n}网格"), start=1)]  # fmt: skip
    two_cells = set(rng.choice(len(grids), size=7, replace=False).tolist())  # 29 x 3 + 7 x 2 = 101
    cells = []
    for n, (grid, name) in enumerate(grids):
        cells += generate(grid, 2 if n in two_cells else 3, lambda n, name=name: f"{name} 单元{n}")
    progress("people: 2 managers per grid, 1 helper per cell")
    helpers = _people(conn, rng, [code for code, _ in grids], cells, start)
    if conn.execute(sa.select(User.id).where(User.name == ADMIN_NAME)).first() is None:
        accounts.create_user(conn, ADMIN_NAME, "admin", password=ADMIN_PASSWORD)
    progress(f"incidents: a week of about 330, from {start.date()}")
    _incidents(conn, settings, rng, homes, start, days, np.random.default_rng(seed + 2))
    _worker(conn, settings, grids[0][0])
    progress("patrols: two a day for every helper")
    _patrols(conn, settings, rng, helpers, start, days)
    for d in range(days):
        compute_coverage(conn, settings, (start + dt.timedelta(days=d)).date())
    return counts(conn)


def _worker(conn: Connection, settings: Settings, grid: str) -> None:
    """The demo worker's account (a manager of *grid*), with the grid's first two cases that wait for dispatch
    dispatched to them."""
    person = conn.execute(sa.text("SELECT id FROM people WHERE external_id = :s"), {"s": f"M-{grid}-1"}).scalar_one()
    if conn.execute(sa.select(User.id).where(User.name == WORKER_NAME)).first() is None:
        accounts.create_user(conn, WORKER_NAME, "worker", password=WORKER_PASSWORD, person_id=person)
    waiting = conn.execute(sa.text("""
        SELECT i.id FROM incidents i JOIN grids g ON g.id = i.grid_id
         WHERE i.status IN ('reported', 'accepted') AND g.code IN (SELECT geogrid_subtree(ARRAY[CAST(:g AS text)]))
         ORDER BY i.reported_at DESC LIMIT 2
    """), {"g": grid}).scalars().all()  # fmt: skip
    for incident in waiting:
        transition(conn, settings, incident, "dispatched", actor=ADMIN_NAME, person_id=person, note="示范：派给网格员")


def counts(conn: Connection) -> dict:
    """What the demo holds, for the CLI and the tests."""
    one = lambda sql: conn.execute(sa.text(sql)).scalar_one()  # noqa: E731
    levels = conn.execute(sa.text("SELECT level, count(*) FROM grids WHERE valid_to IS NULL GROUP BY level"))
    by_level = dict(levels.all())
    return {
        "villages": by_level.get("village", 0), "grids": by_level.get("grid", 0), "cells": by_level.get("cell", 0),
        "managers": one("SELECT count(*) FROM assignments WHERE duty = 'grid_manager' AND valid_to IS NULL"),
        "helpers": one("SELECT count(*) FROM assignments WHERE duty = 'grid_helper' AND valid_to IS NULL"),
        "incidents": one("SELECT count(*) FROM incidents"),
        "closed": one("SELECT count(*) FROM incidents WHERE status = 'closed'"),
        "tracks": one("SELECT count(*) FROM patrol_tracks"),
        "fixes": one("SELECT count(*) FROM gps_fixes"),
    }  # fmt: skip


# -- territory and grids ---------------------------------------------------------------


def place(seed: int):
    """The demo's ground for *seed*: (outline, households, settlement centres), as :func:`load` makes it."""
    return _territory(np.random.default_rng(seed))


def _territory(rng: np.random.Generator):
    """An irregular township outline (~15 km²), its households clustered in 18 settlements, and their centres."""
    x0, y0 = CENTRE
    kx, ky = 1 / (111_320 * math.cos(math.radians(y0))), 1 / 110_574
    phases = rng.uniform(0, 2 * math.pi, 3)
    angles = np.linspace(0, 2 * math.pi, 72, endpoint=False)
    radius = 2200 * (1 + 0.16 * np.sin(2 * angles + phases[0]) + 0.09 * np.sin(5 * angles + phases[1])
                     + 0.05 * np.sin(9 * angles + phases[2]))  # fmt: skip
    outline = shapely.Polygon(np.column_stack([x0 + radius * np.cos(angles) * kx, y0 + radius * np.sin(angles) * ky]))
    outline = shapely.set_precision(outline, 1e-6)
    homes = []
    minx, miny, maxx, maxy = outline.bounds
    centres = []
    while len(centres) < len(VILLAGES):
        c = (rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        far = all(math.hypot((c[0] - o[0]) / kx, (c[1] - o[1]) / ky) > 650 for o in centres)
        if far and outline.buffer(-0.002).contains(shapely.Point(c)):
            centres.append(c)
    for cx, cy in centres:
        for _ in range(int(rng.integers(80, 220))):
            homes.append((cx + rng.normal(0, 180) * kx, cy + rng.normal(0, 180) * ky))
    while len(homes) < 3300:  # scattered farmsteads
        homes.append((rng.uniform(minx, maxx), rng.uniform(miny, maxy)))
    homes = [h for h in homes if outline.contains(shapely.Point(h))]
    return outline, homes, centres


# -- people ------------------------------------------------------------------------------


def _people(conn: Connection, rng: np.random.Generator, grids: list[str], cells: list[str],
            since: dt.datetime) -> dict[str, int]:  # fmt: skip
    """Two managers per grid, a helper per cell; returns cell code -> helper's person id."""

    def person(staff: str) -> int:
        name = str(rng.choice(list(SURNAMES))) + "".join(rng.choice(list(GIVEN), size=int(rng.integers(1, 3))))
        phone = "13" + "".join(str(d) for d in rng.integers(0, 10, 9))
        return conn.execute(
            sa.text("INSERT INTO people (name, phone, external_id) VALUES (:n, :p, :s) RETURNING id"),
            {"n": name, "p": phone, "s": staff},
        ).scalar_one()

    def assign(person_id: int, code: str, duty: str) -> None:
        assign_duty(conn, person_id, code, duty, since=since)

    for grid in grids:
        for k in (1, 2):
            assign(person(f"M-{grid}-{k}"), grid, "grid_manager")
    helpers = {}
    for cell in cells:
        helpers[cell] = person(f"H-{cell}")
        assign(helpers[cell], cell, "grid_helper")
    return helpers


# -- incidents ---------------------------------------------------------------------------


def _pick(rng: np.random.Generator, shares: dict[str, int]) -> str:
    keys = list(shares)
    p = np.array([shares[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _incidents(conn, settings, rng, homes, start: dt.datetime, days: int, flow) -> None:
    """About 330 incidents over *days*, each taken through the workflow as a grid center would."""
    kx = 1 / (111_320 * math.cos(math.radians(CENTRE[1])))
    total = int(330 * days / 7)
    for _ in range(total):
        x, y = homes[int(rng.integers(len(homes)))]
        at = start + dt.timedelta(days=float(rng.uniform(0, days)))
        at = at.replace(hour=int(rng.integers(7, 20)))
        incident = register(conn, settings, NewIncident(
            lon=x + rng.normal(0, 15) * kx, lat=y + rng.normal(0, 15) / 110_574, category=_pick(rng, CATEGORIES),
            source=_pick(rng, SOURCES), description="", reporter=None, reported_at=at,
            gps_accuracy_m=round(float(rng.uniform(3, 25)), 1)), actor="demo", registered_at=at)  # fmt: skip
        _follow(conn, settings, rng, flow, incident["id"], at)


def _follow(conn, settings, rng, flow, incident_id: int, reported: dt.datetime) -> None:
    """Take one case through the standard flow: on the spot, or 立案, 派遣 to a department, 处置, 反馈 and
    核查 (now and then 返工), 结案 and 回访; some escalated, some given more time, a few on the pending list or
    not accepted, some still open. *flow* draws the case-flow choices, so *rng* draws what it always did."""
    now = dt.datetime.now(dt.UTC)
    step = lambda hours: min(reported + dt.timedelta(hours=hours), now - dt.timedelta(minutes=1))  # noqa: E731
    fate = rng.uniform()
    if fate < 0.35:
        transition(conn, settings, incident_id, "handled_on_spot", actor="网格员", at=step(0.5))
    elif fate < 0.97:
        transition(conn, settings, incident_id, "accepted", actor="指挥中心", at=step(0.5), note="核实属实，立案")
        department = str(flow.choice(DEPARTMENTS))
        transition(conn, settings, incident_id, "dispatched", actor="指挥中心", at=step(1), department=department)
        if fate > 0.89:  # beyond the village: up to the township, to a department
            transition(conn, settings, incident_id, "escalated", actor="村网格站", at=step(3),
                       department=str(rng.choice(DEPARTMENTS)), note="超出村级处置能力")  # fmt: skip
        hours = float(rng.gamma(2.0, 7.0))
        if step(hours) >= now - dt.timedelta(minutes=2) or rng.uniform() < 0.04:
            transition(conn, settings, incident_id, "in_progress", actor=department, at=step(2 + hours / 3))
            more = flow.uniform()
            if more < 0.25:  # the handler asks for more time; the center mostly agrees
                request_delay(conn, incident_id, actor=department, kind="extend", hours=24, reason="需协调施工队伍",
                              at=step(2 + hours / 2))  # fmt: skip
                decide_delay(conn, incident_id, actor="指挥中心", approve=more < 0.2, at=step(2 + hours / 2 + 0.5))
            elif more < 0.33:
                transition(conn, settings, incident_id, "pending", actor="指挥中心", at=step(2 + hours / 2),
                           note="涉及产权纠纷，超出中心职权", review_at=now + dt.timedelta(days=14))  # fmt: skip
            return  # still being handled; overdue once its deadline passes
        transition(conn, settings, incident_id, "in_progress", actor=department, at=step(2))
        transition(conn, settings, incident_id, "resolved", actor=department, at=step(2 + hours), note="已处置")
        if flow.uniform() < 0.08:  # the on-site check fails: back to the handler
            transition(conn, settings, incident_id, "rework", actor="网格员", at=step(2.5 + hours),
                       note="现场核查未完成")  # fmt: skip
            transition(conn, settings, incident_id, "resolved", actor=department, at=step(5 + hours), note="已整改")
        last = conn.execute(sa.text("SELECT max(at) FROM incident_events WHERE incident_id = :i"),
                            {"i": incident_id}).scalar_one()  # fmt: skip
        transition(conn, settings, incident_id, "closed", actor="网格员",
                   at=min(last + dt.timedelta(minutes=30), now - dt.timedelta(seconds=45)))  # fmt: skip
    else:
        if flow.uniform() < 0.3:
            transition(conn, settings, incident_id, "rejected", actor="指挥中心", at=step(0.5), note="重复上报")
        return  # just reported
    done = conn.execute(sa.text("SELECT max(at) FROM incident_events WHERE incident_id = :i"),
                        {"i": incident_id}).scalar_one()  # fmt: skip
    visit_at = min(done + dt.timedelta(hours=float(rng.uniform(1, 8))), now - dt.timedelta(seconds=30))
    if visit_at <= done:
        return
    satisfied = rng.uniform() < 0.95
    return_visit(conn, incident_id, actor="回访员", method=str(rng.choice(["phone", "visit"], p=[0.7, 0.3])),
                 satisfied=satisfied, at=visit_at, note="" if satisfied else "群众不满意，重新处置")  # fmt: skip


# -- patrols ---------------------------------------------------------------------------


def _patrols(conn, settings, rng, helpers: dict[str, int], start: dt.datetime, days: int) -> None:
    """Each helper walks their cell in strips, twice a day (morning and afternoon), one CSV upload a day.

    About 8% of patrols are skipped (missed cells), a few are cut short, and 1 fix in
    60 is a GPS jump that the cleaning drops.
    """
    for cell, person_id in helpers.items():
        geom = versions.lock_current(conn, cell).geom
        for d in range(days):
            day = start + dt.timedelta(days=d)
            rows = ["time,lon,lat,accuracy"]
            for hour in (8.5, 15.0):
                if rng.uniform() < 0.08:
                    continue
                begin = day + dt.timedelta(hours=hour + float(rng.uniform(-0.5, 0.5)))
                rows += _walk(rng, geom, begin, short=rng.uniform() < 0.08)
            if len(rows) > 1:
                import_patrol(conn, settings, person_id, f"{cell}-{day.date()}.csv", "\n".join(rows).encode())


def _walk(rng: np.random.Generator, cell, begin: dt.datetime, short: bool) -> list[str]:
    """Back-and-forth strips 60 m apart across the cell at ~1.2 m/s, a fix every 15 s."""
    kx = 1 / (111_320 * math.cos(math.radians(CENTRE[1])))
    ky = 1 / 110_574
    minx, miny, maxx, maxy = cell.bounds
    strip = 60 * ky
    ys = np.arange(miny + strip / 2, maxy, strip)
    if short:
        ys = ys[: max(1, len(ys) // 3)]
    path = []
    for n, y in enumerate(ys):
        line = shapely.LineString([(minx, y), (maxx, y)]).intersection(cell)
        if line.is_empty:
            continue
        xs = [c[0] for c in shapely.get_coordinates(line)]
        a, b = min(xs), max(xs)
        path += [(a, y), (b, y)] if n % 2 == 0 else [(b, y), (a, y)]
    if len(path) < 2:
        path = [tuple(cell.representative_point().coords[0])] * 2
    walk = shapely.LineString(path)
    length_m = walk.length / kx  # roughly: degrees of longitude to metres
    steps = max(2, int(length_m / 18))  # 1.2 m/s x 15 s
    rows = []
    for i in range(steps + 1):
        p = walk.interpolate(i / steps, normalized=True)
        x, y = p.x + rng.normal(0, 4) * kx, p.y + rng.normal(0, 4) * ky
        if rng.uniform() < 1 / 60:
            x += 2000 * kx  # a GPS jump
        t = begin + dt.timedelta(seconds=15 * i)
        rows.append(f"{t.isoformat()},{x:.7f},{y:.7f},{rng.uniform(3, 15):.1f}")
    return rows
