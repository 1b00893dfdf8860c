"""The roster: people and their duties, from the CLI, a roster file and the API, and what reads them."""

from __future__ import annotations

import csv

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from geogrid import people
from geogrid.cli import main
from geogrid.errors import Conflict, InvalidInput, NotFound
from tests.conftest import bearer


def test_duties_are_given_once_listed_by_grid_and_ended_into_the_history(conn, demo_grids):
    wang = people.add_person(conn, " 王伟 ", phone="138", staff_no="W-01")
    assert (wang["name"], wang["staff_no"], wang["duties"]) == ("王伟", "W-01", [])
    duty, new = people.assign_duty(conn, "W-01", "XWZ001001", "grid_helper")
    assert new and duty["grid_code"] == "XWZ001001" and duty["until"] is None
    assert people.assign_duty(conn, wang["id"], "XWZ001001", "grid_helper") == (duty, False)
    people.assign_duty(conn, "王伟", "XWZ002", "department_handler", department="城管")
    assert [p["name"] for p in people.list_people(conn, grid="XWZ001")] == ["王伟"]  # a cell below the village
    assert people.list_people(conn, grid="XWZ002001") == []  # the village's duty is not the cell's
    assert {d["grid_code"] for d in people.person(conn, "W-01")["duties"]} == {"XWZ001001", "XWZ002"}
    assert people.end_duty(conn, "W-01", "XWZ001001") == 1
    assert [d["grid_code"] for d in people.person(conn, "W-01")["duties"]] == ["XWZ002"]
    ended = conn.execute(sa.text("SELECT count(*) FROM assignments WHERE valid_to IS NOT NULL")).scalar()
    assert ended == 1  # kept, not deleted


@pytest.mark.parametrize(
    ("call", "error", "says"),
    [
        (lambda c: people.add_person(c, "  "), InvalidInput, "name is required"),
        (lambda c: people.add_person(c, "李四", staff_no="W-01"), Conflict, "someone else's"),
        (lambda c: people.assign_duty(c, "W-01", "XWZ001001", "boss"), InvalidInput, "unknown duty"),
        (lambda c: people.assign_duty(c, "W-01", "NOPE", "grid_helper"), NotFound, "no grid NOPE"),
        (lambda c: people.assign_duty(c, "W-01", "XWZ001", "department_handler"), InvalidInput, "department"),
        (lambda c: people.assign_duty(c, "nobody", "XWZ001", "grid_helper"), NotFound, "no person"),
        (lambda c: people.end_duty(c, "W-01", "XWZ001"), NotFound, "has no current duty on XWZ001"),
        (lambda c: people.add_person(c, "x" * 201), InvalidInput, "at most 200"),
    ],
)
def test_bad_roster_changes_are_refused_with_a_reason(conn, demo_grids, call, error, says):
    people.add_person(conn, "王伟", staff_no="W-01")
    with pytest.raises(error, match=says):
        call(conn)


def test_roster_file_from_the_cli_adds_people_and_duties_once_and_rejects_bad_rows(scratch_url, tmp_path):
    from geogrid import demo

    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        demo.load(conn)
        before = conn.execute(sa.text("SELECT count(*) FROM assignments WHERE valid_to IS NULL")).scalar()
    path = tmp_path / "roster.csv"
    rows = [
        {"姓名": "赵一", "工号": "Z1", "网格编码": "XWZ001001", "职责": "grid_helper"},
        {"姓名": "赵一", "工号": "Z1", "网格编码": "XWZ001002", "职责": "grid_helper"},
        {"姓名": "钱二", "工号": "", "网格编码": "XWZ001", "职责": "grid_manager"},
        {"姓名": "孙三", "工号": "Z1", "网格编码": "XWZ001003", "职责": "grid_helper"},  # Z1 is 赵一's
        {"姓名": "李四", "工号": "Z4", "网格编码": "XWZ999", "职责": "grid_helper"},
        {"姓名": "=1+1", "工号": "Z5", "网格编码": "XWZ001", "职责": "boss"},
    ]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    env = {"GEOGRID_DATABASE_URL": scratch_url}
    result = CliRunner().invoke(main, ["people", "import", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "6 rows: 2 people and 3 duties added, 0 already there, 3 rejected" in result.output
    with open(f"{path}.rejects.csv", newline="", encoding="utf-8") as f:
        rejects = {r["line"]: r for r in csv.DictReader(f)}
    assert "赵一's" in rejects["5"]["reason"] and "no grid XWZ999" in rejects["6"]["reason"]
    assert "unknown duty" in rejects["7"]["reason"] and rejects["7"]["姓名"] == "'=1+1"
    again = CliRunner().invoke(main, ["people", "import", str(path)], env=env)
    assert "0 people and 0 duties added, 3 already there, 3 rejected" in again.output
    listed = CliRunner().invoke(main, ["people", "list", "--grid", "XWZ001001"], env=env)
    assert "赵一 [Z1]: grid_helper XWZ001001, grid_helper XWZ001002" in listed.output
    ended = CliRunner().invoke(main, ["people", "unassign", "Z1", "XWZ001002"], env=env)
    assert ended.exit_code == 0 and "1 duty(ies) ended" in ended.output
    refused = CliRunner().invoke(main, ["people", "assign", "Z1", "XWZ001", "--duty", "boss"], env=env)
    assert refused.exit_code == 2 and "unknown duty 'boss'" in refused.output
    with engine.connect() as conn:
        now = conn.execute(sa.text("SELECT count(*) FROM assignments WHERE valid_to IS NULL")).scalar()
        assert now == before + 2
    engine.dispose()


def test_api_roster_and_what_reads_it(client, conn, settings, make_user, demo_grids):
    from geogrid.grids import edit
    from geogrid.incidents.intake import NewIncident, register
    from geogrid.patrols.compute import prepare_day
    from geogrid.patrols.queries import coverage_report

    _, supervisor = make_user("supervisor")
    _, operator = make_user("operator")
    made = client.post("/api/people", json={"name": "周五", "staff_no": "S5"}, headers=bearer(supervisor))
    assert made.status_code == 201, made.json
    pid = made.json["id"]
    body = {"grid_code": "XWZ002002", "duty": "grid_helper"}
    first = client.post(f"/api/people/{pid}/duties", json=body, headers=bearer(supervisor))
    again = client.post(f"/api/people/{pid}/duties", json=body, headers=bearer(supervisor))
    assert (first.status_code, again.status_code, again.json["id"]) == (201, 200, first.json["id"])
    assert client.post(f"/api/people/{pid}/duties", json={**body, "grid_code": "NOPE"},
                       headers=bearer(supervisor)).status_code == 404  # fmt: skip
    listed = client.get("/api/people?grid=XWZ002", headers=bearer(operator)).json
    assert [(p["name"], [d["grid_code"] for d in p["duties"]]) for p in listed] == [("周五", ["XWZ002002"])]
    assert client.post("/api/people", json={"name": "x"}, headers=bearer(operator)).status_code == 403

    # The incident desk sees them as responsible for the cell ...
    cell = edit.lock_current(conn, "XWZ002002").geom.representative_point()
    incident = register(conn, settings, NewIncident(lon=cell.x, lat=cell.y, category="garbage", source="phone"),
                        actor="desk")  # fmt: skip
    detail = client.get(f"/api/incidents/{incident['id']}", headers=bearer(operator)).json
    assert "周五" in str(detail["responsible"])
    # ... and today's coverage report lists the cell as theirs, missed (someone else patrolled elsewhere).
    from zoneinfo import ZoneInfo

    from geogrid.patrols.ingest import import_patrol

    moment = conn.execute(sa.text("SELECT now() - interval '1 minute'")).scalar_one()
    other = people.add_person(conn, "吴六")["id"]
    import_patrol(conn, settings, other, "w.csv", f"time,lon,lat\n{moment.isoformat()},115.26,37.76\n".encode())
    day = moment.astimezone(ZoneInfo(settings.timezone)).date()
    prepare_day(conn, settings, day)
    worker = next(w for w in coverage_report(conn, settings, day)["workers"] if w["person_id"] == pid)
    assert worker["assigned"] == ["XWZ002002"] and worker["missed"] == ["XWZ002002"]

    duty_id = first.json["id"]
    ended = client.post(f"/api/people/{pid}/duties/{duty_id}/end", headers=bearer(supervisor))
    assert ended.status_code == 200 and ended.json["until"] is not None
    assert client.post(f"/api/people/{pid}/duties/{duty_id}/end", headers=bearer(supervisor)).status_code == 409
    assert client.get(f"/api/people/{pid}", headers=bearer(operator)).json["duties"] == []
