"""A planner's edit carries what hangs on the grids (duties), and a past day stays as it was."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from geogrid import demo
from geogrid.cli import main
from geogrid.errors import InvalidInput
from geogrid.grids import edit
from geogrid.patrols.compute import compute_coverage
from geogrid.patrols.ingest import import_patrol
from geogrid.patrols.queries import coverage_report
from geogrid.people import add_person, assign_duty
from tests.conftest import bearer
from tests.test_patrols_coverage import DAY, DEG, H_DEG, SINCE, W_DEG, X0, Y0, at, walk_east, walk_north

SPLIT = "LINESTRING(115.257 37.76, 115.258 37.79)"  # across XWZ001002 of the small demo


def duties(conn, *codes: str) -> dict[str, list[tuple[str, str]]]:
    """Current duties on *codes*: code -> [(person name, duty)]."""
    rows = conn.execute(sa.text(
        "SELECT a.grid_code, p.name, a.duty FROM assignments a JOIN people p ON p.id = a.person_id "
        "WHERE a.valid_to IS NULL AND a.grid_code = ANY(:c) ORDER BY 1, 2, 3"), {"c": list(codes)}).all()  # fmt: skip
    out: dict[str, list] = {c: [] for c in codes}
    for code, name, duty in rows:
        out[code].append((name, duty))
    return out


@pytest.fixture
def staffed(conn, demo_grids):
    """The small demo with a helper and a manager on XWZ001002, helpers on XWZ002001 and XWZ002002."""
    ids = {}
    for name, code, duty in [("王伟", "XWZ001002", "grid_helper"), ("李娜", "XWZ001002", "grid_manager"),
                             ("张敏", "XWZ002001", "grid_helper"), ("刘强", "XWZ002002", "grid_helper"),
                             ("张敏", "XWZ002002", "grid_helper")]:  # fmt: skip
        if name not in ids:
            ids[name] = add_person(conn, name, staff_no=f"S-{len(ids) + 1}")["id"]
        assign_duty(conn, ids[name], code, duty)
    return ids


def test_a_split_gives_every_duty_to_each_piece_and_ends_the_old_ones(conn, settings, staffed):
    result = edit.split_grid(conn, settings, "XWZ001002", edit.parse_geometry(SPLIT), actor="planner")
    pieces = list(result.created)
    assert len(pieces) == 2
    now = duties(conn, "XWZ001002", *pieces)
    assert now["XWZ001002"] == []
    for piece in pieces:
        assert now[piece] == [("李娜", "grid_manager"), ("王伟", "grid_helper")]
    assert sorted((d["person"], d["to"]) for d in result.duties) == [("李娜", pieces), ("王伟", pieces)]
    ended = conn.execute(
        sa.text("SELECT count(*) FROM assignments WHERE grid_code = 'XWZ001002' AND valid_to IS NOT NULL")
    ).scalar()
    notes = conn.execute(sa.text("SELECT DISTINCT note FROM assignments WHERE grid_code = ANY(:p)"),
                         {"p": pieces}).scalars().all()  # fmt: skip
    assert ended == 2 and notes == ["split of XWZ001002 (was on XWZ001002)"]


def test_a_merge_gives_the_union_of_holders_one_duty_each(conn, settings, staffed):
    result = edit.merge_grids(conn, settings, ["XWZ002001", "XWZ002002"], actor="planner")
    (merged,) = result.created
    assert duties(conn, merged)[merged] == [("刘强", "grid_helper"), ("张敏", "grid_helper")]
    zhang = next(d for d in result.duties if d["person"] == "张敏")
    assert zhang["from"] == ["XWZ002001", "XWZ002002"] and zhang["to"] == [merged]


def test_the_planner_says_who_goes_where_in_the_same_request(client, conn, settings, make_user, staffed):
    _, planner = make_user("planner")
    url = "/api/grids/XWZ001002/split"
    preview = client.post(url, json={"line": SPLIT, "dry_run": True}, headers=bearer(planner))
    assert preview.status_code == 200 and preview.json["dry_run"] is True
    first, second = (p["code"] for p in preview.json["created"])
    assert all(p["geometry"]["type"] == "MultiPolygon" for p in preview.json["created"])
    assert duties(conn, "XWZ001002")["XWZ001002"] != []  # a preview writes nothing

    stranger = client.post(url, json={"line": SPLIT, "duties": {"1": ["S-3"]}}, headers=bearer(planner))
    assert stranger.status_code == 422 and "no duty on XWZ001002" in stranger.json["detail"]
    wrong = client.post(url, json={"line": SPLIT, "duties": {"3": ["S-1"]}}, headers=bearer(planner))
    assert wrong.status_code == 422 and "makes 2 pieces" in wrong.json["detail"]

    plan = {first: ["S-1"], second: ["李娜"]}  # by the preview's codes; people by staff number or name
    done = client.post(url, json={"line": SPLIT, "duties": plan}, headers=bearer(planner))
    assert done.status_code == 200, done.json
    assert duties(conn, first, second) == {first: [("王伟", "grid_helper")], second: [("李娜", "grid_manager")]}
    assert done.json["dropped"] == []


def test_a_merge_can_keep_only_some_people_and_says_who_was_dropped(client, conn, make_user, staffed):
    _, planner = make_user("planner")
    body = {"codes": ["XWZ002001", "XWZ002002"], "duties": ["张敏"]}
    done = client.post("/api/grids/merge", json=body, headers=bearer(planner))
    assert done.status_code == 200, done.json
    (merged,) = (c["code"] for c in done.json["created"])
    assert duties(conn, merged)[merged] == [("张敏", "grid_helper")]
    assert [d["person"] for d in done.json["dropped"]] == ["刘强"]


def test_the_cli_previews_and_splits_with_a_plan(scratch_url, settings):
    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        demo.load(conn)
        helper = add_person(conn, "王伟", staff_no="W-01")["id"]
        assign_duty(conn, helper, "XWZ001002", "grid_helper")
    env = {"GEOGRID_DATABASE_URL": scratch_url}
    preview = CliRunner().invoke(main, ["grids", "split", "XWZ001002", "--line", SPLIT, "--dry-run"], env=env)
    assert preview.exit_code == 0, preview.output
    assert "dry run: nothing written" in preview.output and "duty grid_helper of 王伟" in preview.output
    done = CliRunner().invoke(main, ["grids", "split", "XWZ001002", "--line", SPLIT, "--duties", "2=W-01"], env=env)
    assert done.exit_code == 0, done.output
    assert f"duty grid_helper of 王伟 ({helper}): XWZ001002 -> XWZ001004" in done.output
    assert "0 open incident(s) moved" in done.output
    bad = CliRunner().invoke(main, ["grids", "split", "XWZ001003", "--line", SPLIT, "--duties", "W-01"], env=env)
    assert bad.exit_code == 2 and "--duties takes PIECE=PEOPLE" in bad.output
    with engine.connect() as conn:
        assert duties(conn, "XWZ001003", "XWZ001004") == {"XWZ001003": [], "XWZ001004": [("王伟", "grid_helper")]}
    engine.dispose()


def test_a_plan_naming_nobody_for_a_piece_is_allowed_but_strangers_are_not(conn, settings, staffed):
    with pytest.raises(InvalidInput, match="no duty on XWZ001002"):
        edit.split_grid(conn, settings, "XWZ001002", edit.parse_geometry(SPLIT), duties={"1": ["刘强"]})


# -- a past day stays as it was ---------------------------------------------------------------


@pytest.fixture
def two_level(conn):
    """A township P that is exactly its one village R (the coverage tests' 80 m x 300 m cell), since SINCE."""
    for code, level, parent in (("P", "township", None), ("R", "village", "P")):
        conn.execute(
            sa.text("INSERT INTO grids (code, name, level, parent_code, geom, valid_from) VALUES "
                    "(:code, :code, :level, :parent, ST_Multi(ST_MakeEnvelope(:a, :b, :c, :d, 4326)), :since)"),
            {"code": code, "level": level, "parent": parent, "a": X0, "b": Y0, "c": X0 + W_DEG, "d": Y0 + H_DEG,
             "since": SINCE},
        )  # fmt: skip
    person = add_person(conn, "孙七")["id"]
    conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty, valid_from) "
                         "VALUES (:p, 'R', 'grid_helper', :s)"), {"p": person, "s": SINCE})  # fmt: skip
    return person


def snapshot(conn, day):
    return conn.execute(sa.text(
        "SELECT grid_code, grid_id, person_id, cell_m2, covered_m2, fraction, visits, rule_visits, assigned, "
        "compliant, reasons FROM coverage WHERE day = :d ORDER BY grid_code, person_id"), {"d": day}).all()  # fmt: skip


def test_a_past_day_keeps_its_boundaries_and_duties_after_a_split(conn, settings, two_level):
    worker = two_level
    import_patrol(conn, settings, worker, "am.csv", walk_north(at(1)))
    import_patrol(conn, settings, worker, "pm.csv", walk_north(at(6)))
    compute_coverage(conn, settings, DAY)
    before = snapshot(conn, DAY)
    assert [(r.grid_code, r.compliant) for r in before] == [("R", True)]

    # Split R across the middle, days later (the transaction's now is today).
    middle = Y0 + H_DEG / 2
    line = edit.parse_geometry(f"LINESTRING({X0 - 0.001} {middle}, {X0 + W_DEG + 0.001} {middle})")
    pieces = list(edit.split_grid(conn, settings, "R", line).created)
    compute_coverage(conn, settings, DAY)
    assert snapshot(conn, DAY) == before  # the retired cell still appears for DAY, with the same rows
    report = coverage_report(conn, settings, DAY, level="township")
    assert [c["grid_code"] for c in report["cells"]] == ["R"] and report["rollup"][0]["cells"] == 1

    # Today the pieces are the cells, and the helper is on duty on both of them.
    today = conn.execute(sa.text("SELECT (now() AT TIME ZONE :z)::date"), {"z": settings.timezone}).scalar()
    morning = dt.datetime.combine(today, dt.time(1, 0), tzinfo=dt.UTC)
    import_patrol(conn, settings, worker, "today.csv", walk_east(morning))
    compute_coverage(conn, settings, today)
    rows = {r.grid_code: r for r in snapshot(conn, today)}
    assert set(rows) == set(pieces) and all(r.assigned for r in rows.values())


def test_a_vehicle_passing_a_cell_between_two_fixes_visits_it(conn, settings, two_level):
    # 400 m east-west through the middle of the 80 m wide cell, one fix each end, 40 s apart:
    # no fix lies within the 30 m sight of the cell, the line crosses it.
    worker = two_level
    y = Y0 + H_DEG / 2
    rows = ["time,lon,lat", f"{at(1).isoformat()},{X0 - 160 * DEG / 0.79016},{y}",
            f"{(at(1) + dt.timedelta(seconds=40)).isoformat()},{X0 + 240 * DEG / 0.79016},{y}"]  # fmt: skip
    import_patrol(conn, settings, worker, "car.csv", "\n".join(rows).encode())
    compute_coverage(conn, settings, DAY)
    (row,) = snapshot(conn, DAY)
    assert row.fraction == pytest.approx(60 * 80 / (80 * 300), rel=0.02)  # a 60 m strip across the cell
    (visit,) = row.visits
    entry, exit_ = (dt.datetime.fromisoformat(visit[k]) for k in ("entry", "exit"))
    # Within 30 m of the cell from 130 m to 270 m along the 400 m: 13 s and 27 s after the first fix.
    assert (entry - at(1)).total_seconds() == pytest.approx(13, abs=0.5)
    assert (exit_ - at(1)).total_seconds() == pytest.approx(27, abs=0.5)


def test_last_weeks_indicators_stay_as_they_were_after_a_split(conn, settings, demo_grids):
    from geogrid.incidents.intake import NewIncident, register
    from geogrid.incidents.metrics import metrics

    when = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    for lon in (115.2555, 115.2575):  # either side of the line
        register(conn, settings, NewIncident(lon=lon, lat=37.772, category="garbage", source="phone", reported_at=when),
                 actor="desk")  # fmt: skip
    week = {"start": dt.datetime(2026, 11, 16, tzinfo=dt.UTC), "end": dt.datetime(2026, 11, 23, tzinfo=dt.UTC)}

    def rows(**period):
        return [(r["code"], r["name"], r["registered"]) for r in metrics(conn, level="grid", **period)]

    before = rows(**week)
    assert ("XWZ001002", "第1村 网格2", 2) in before
    pieces = list(edit.split_grid(conn, settings, "XWZ001002", edit.parse_geometry(SPLIT)).created)
    assert rows(**week) == before  # the week is counted on its own grids, the incidents in their cells then
    now = {code: n for code, _, n in rows()}
    assert "XWZ001002" not in now and sum(now.get(p, 0) for p in pieces) == 2  # today: the pieces
