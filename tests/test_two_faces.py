"""The CLI and the API answer alike: a wrong value is one line and exit status 2 with the API's 422 words;
a day with nothing to report says so, on the pages too."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from geogrid import demo
from geogrid.cli import main
from geogrid.patrols.ingest import import_patrol
from geogrid.people import add_person
from tests.conftest import bearer

#: (CLI arguments, API path) that must be refused with the same words.
SAME_WORDS = [
    (["incidents", "add", "--lon", "115.26", "--lat", "37.76", "--category", "garbage", "--at", "yesterday"],
     ("POST", "/api/incidents", {"lon": 115.26, "lat": 37.76, "category": "garbage", "source": "phone",
                                 "reported_at": "yesterday"})),
    (["patrols", "coverage", "--date", "2026-13-01"], ("GET", "/api/coverage?date=2026-13-01", None)),
    (["patrols", "coverage", "--date", "20261120"], ("GET", "/api/coverage?date=20261120", None)),
    (["incidents", "metrics", "--level", "x"], ("GET", "/api/metrics?level=x", None)),
    (["incidents", "metrics", "--from", "last week"], ("GET", "/api/metrics?from=last%20week", None)),
    (["incidents", "list", "--status", "lost"], ("GET", "/api/incidents?status=lost", None)),
    (["incidents", "list", "--grid", "XWZ999"], ("GET", "/api/incidents?grid=XWZ999", None)),
    (["incidents", "list", "--grid", "xwz001"], ("GET", "/api/incidents?grid=xwz001", None)),
    (["incidents", "metrics", "--grid", "XWZ9"], ("GET", "/api/metrics?grid=XWZ9", None)),
    (["grids", "export", "out.geojson", "--at", "someday"], ("GET", "/api/grids?at=someday", None)),
    (["grids", "export", "out.geojson", "--level", "galaxy"], ("GET", "/api/grids?level=galaxy", None)),
    (["grids", "validate", "XWZ999"], ("GET", "/api/grids/XWZ999/topology", None)),
    (["grids", "validate", "--tolerance", "wide"], ("GET", "/api/grids/XWZ/topology?tolerance_m=wide", None)),
    (["people", "list", "--grid", "XWZ999"], ("GET", "/api/people?grid=XWZ999", None)),
    (["audit", "--from", "2026-02-30"], ("GET", "/api/audit?from=2026-02-30", None)),
]  # fmt: skip


@pytest.fixture
def both(scratch_url, settings):
    """The small demo in a database of its own, its CLI and an admin's API client on it."""
    from geogrid import accounts
    from geogrid.api import create_app

    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        demo.load(conn)
        _, token = accounts.create_user(conn, "faces", "admin")
    app = create_app(settings, bind=engine)

    def cli(*args):
        return CliRunner().invoke(main, list(args), env={"GEOGRID_DATABASE_URL": scratch_url})

    yield cli, app.test_client(), bearer(token), engine
    engine.dispose()


def test_a_wrong_value_is_one_line_exit_2_and_the_apis_words(both, tmp_path, monkeypatch):
    cli, client, token, _ = both
    monkeypatch.chdir(tmp_path)
    for args, (method, path, body) in SAME_WORDS:
        out = cli(*args)
        answer = client.open(path, method=method, json=body, headers=token)
        assert answer.status_code in (404, 422), (path, answer.status_code)
        assert out.exit_code == 2, (args, out.output)
        assert out.output == f"geogrid: {answer.json['detail']}\n", (args, out.output, answer.json)
        assert "Traceback" not in out.output
    # An unknown code is named, with the code it was probably meant to be.
    assert cli("incidents", "list", "--grid", "xwz001").output == "geogrid: no grid xwz001 (did you mean XWZ001?)\n"


def test_a_day_with_nothing_to_report_says_so_on_every_face(both, settings):
    cli, client, token, engine = both
    zone = ZoneInfo(settings.timezone)
    today = dt.datetime.now(zone).date()
    future, empty, before = today + dt.timedelta(days=3), dt.date(2026, 11, 20), dt.date(2025, 6, 1)
    with engine.begin() as conn:
        helper = add_person(conn, "王伟")["id"]
        conn.execute(
            sa.text("INSERT INTO assignments (person_id, grid_code, duty, valid_from) "
                    "VALUES (:p, 'XWZ001001', 'grid_helper', :s)"),
            {"p": helper, "s": demo.SINCE},
        )  # fmt: skip
        walk = "time,lon,lat\n2026-11-21T09:00:00,115.26,37.76\n2026-11-21T09:00:10,115.2601,37.76\n"
        import_patrol(conn, settings, helper, "w.csv", walk.encode())

    said = cli("patrols", "coverage", "--date", future.isoformat())
    assert said.exit_code == 2 and "is in the future" in said.output
    assert client.get(f"/api/coverage?date={future}", headers=token).status_code == 422
    for day, words in ((empty, "no patrol data on 2026-11-20"), (before, "no boundaries on 2025-06-01")):
        out = cli("patrols", "coverage", "--date", day.isoformat())
        assert out.exit_code == 0 and out.output.strip().startswith(words), out.output
        body = client.get(f"/api/coverage?date={day}", headers=token).json
        assert body["notice"].startswith(words) and body["cells"] == [] and body["workers"] == []
        page = client.get(f"/map/coverage?date={day}", headers=token).get_data(as_text=True)
        assert words in page and "Missed cells" not in page
    # A day with patrols lists the helper's cell as patrolled, with no notice.
    report = client.get("/api/coverage?date=2026-11-21", headers=token).json
    assert report["notice"] is None and [w["person"] for w in report["workers"]] == ["王伟"]
    # The planner's map of a date before the first boundaries says so instead of an empty map.
    page = client.get("/map/grids?at=2025-06-01", headers=token).get_data(as_text=True)
    assert "No boundaries on 2025-06-01: the first are valid from 2026-01-01" in page
