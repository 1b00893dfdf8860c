"""A grid worker's own day through the API: their cells done and to do, their cases and the steps they may take
on them, photos (type, size and count limits, EXIF position), and a track sent in pieces as it is walked."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from PIL import Image

from geogrid import photos
from geogrid.api import create_app
from geogrid.errors import Conflict, InvalidInput, TooLarge
from geogrid.incidents import workflow
from geogrid.patrols import repairs
from geogrid.patrols.compute import ensure_coverage, prepare_day
from geogrid.patrols.ingest import import_patrol
from geogrid.patrols.queries import person_day
from tests.conftest import bearer, helper_on, jpeg
from tests.test_patrols_coverage import DAY, at, make_cell, on_duty, walk_north

CELL = "XWZ001002"


@pytest.fixture
def field(conn, demo_grids, make_user, settings):
    """A grid helper on CELL with a worker's account, an operator, and a case dispatched to the helper."""
    person, lon, lat = helper_on(conn, CELL)
    _, token = make_user("worker", name="wangwei", person_id=person)
    _, center = make_user("operator", name="center")
    return SimpleNamespace(person=person, lon=lon, lat=lat, token=bearer(token), center=bearer(center))


def register(client, who, lon, lat, **extra) -> int:
    made = client.post("/api/incidents", json={"lon": lon, "lat": lat, "category": "garbage", "source": "patrol",
                                               "description": "垃圾桶满溢", **extra}, headers=who)  # fmt: skip
    assert made.status_code == 201, made.json
    return made.json["id"]


def dispatch(conn, settings, incident: int, person: int) -> None:
    workflow.transition(conn, settings, incident, "dispatched", actor="center", person_id=person)


# -- photos -------------------------------------------------------------------------------


def test_a_photo_is_read_for_its_type_size_and_exif_position_and_time(settings):
    read = photos.read_photo(jpeg(115.24543, 37.77236, "2026:11:30 09:15:00"), settings)
    assert (read.content_type, read.width, read.height) == ("image/jpeg", 640, 480)
    assert (round(read.lon, 5), round(read.lat, 5)) == (115.24543, 37.77236)
    assert read.taken_at == dt.datetime(2026, 11, 30, 1, 15, tzinfo=dt.UTC)
    assert Image.open(io.BytesIO(read.thumb)).size == (320, 240)
    # No EXIF: no position, no time. West and south are negative; (0, 0) is no position.
    assert photos.read_photo(jpeg(), settings).lon is None
    west = photos.read_photo(jpeg(-73.98, -40.7), settings)
    assert (round(west.lon, 2), round(west.lat, 2)) == (-73.98, -40.7)
    assert photos.read_photo(jpeg(0.0, 0.0), settings).lon is None
    png = io.BytesIO()
    Image.new("RGB", (50, 40)).save(png, "PNG")
    assert photos.read_photo(png.getvalue(), settings).content_type == "image/png"


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"GIF89a" + b"\0" * 100, "not a photo"), (b"%PDF-1.7 ...", "not a photo"),
     (jpeg()[:200], "cannot be read"), (b"\xff\xd8\xff" + b"<script>alert(1)</script>", "cannot be read")],
)  # fmt: skip
def test_what_is_not_a_photo_is_refused_with_a_reason(settings, data, message):
    with pytest.raises(InvalidInput, match=message):
        photos.read_photo(data, settings)


def test_a_decompression_bomb_is_refused(settings):
    huge = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(huge, "PNG")  # a few KB that decode to 144 megapixels
    with pytest.raises(InvalidInput, match="too many pixels"):
        photos.read_photo(huge.getvalue(), settings)


def test_the_size_limit_just_inside_and_outside(conn, settings, field, client):
    incident = register(client, field.center, field.lon, field.lat)
    plain = jpeg()
    limited = dataclasses.replace(settings, photo_max_bytes=len(plain) + 10)
    made = photos.attach(conn, limited, jpeg(pad=10), actor="center", incident_id=incident)  # at the limit
    assert made["size"] == len(plain) + 10
    with pytest.raises(TooLarge, match=f"limit is {len(plain) + 10}"):
        photos.attach(conn, limited, jpeg(pad=11), actor="center", incident_id=incident)
    # Through the API: 413 with the limit in words.
    small = create_app(limited, bind=conn).test_client()
    answer = small.post(f"/api/incidents/{incident}/photos", data=jpeg(pad=11), headers=field.center,
                        content_type="image/jpeg")  # fmt: skip
    assert answer.status_code == 413 and answer.json["limit"] == len(plain) + 10


def test_the_photos_per_case_limit_just_inside_and_outside(conn, settings, field, client):
    incident = register(client, field.center, field.lon, field.lat)
    two = dataclasses.replace(settings, photos_per_item=2)
    photos.attach(conn, two, jpeg(), actor="center", incident_id=incident)
    photos.attach(conn, two, jpeg(), actor="center", incident_id=incident)  # the second of two: allowed
    with pytest.raises(Conflict, match="limit is 2"):
        photos.attach(conn, two, jpeg(), actor="center", incident_id=incident)


def test_a_case_shows_its_photos_with_how_far_from_the_case_they_were_taken(conn, settings, field, client):
    incident = register(client, field.center, field.lon, field.lat)
    near = client.post(f"/api/incidents/{incident}/photos?note=现场", data=jpeg(field.lon + 0.0005, field.lat),
                       headers=field.center, content_type="image/jpeg")  # fmt: skip
    assert near.status_code == 201, near.json
    # 0.0005 degrees of longitude at 37.8 degrees north is about 44 m.
    assert near.json["distance_m"] == pytest.approx(44, abs=1.5) and near.json["note"] == "现场"
    client.post(f"/api/incidents/{incident}/photos", data=jpeg(), headers=field.center, content_type="image/jpeg")
    shown = client.get(f"/api/incidents/{incident}", headers=field.center).json["photos"]
    assert [p["distance_m"] is None for p in shown] == [False, True]
    full = client.get(shown[0]["url"], headers=field.center)
    assert full.status_code == 200 and full.content_type == "image/jpeg" and full.data.startswith(b"\xff\xd8\xff")
    thumb = client.get(shown[0]["url"] + "?size=thumb", headers=field.center)
    assert Image.open(io.BytesIO(thumb.data)).size == (320, 240)
    assert client.get(shown[0]["url"] + "?size=huge", headers=field.center).status_code == 422
    audited = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE table_name = 'photos'")).scalar_one()
    assert audited == 2


# -- the worker's cases -----------------------------------------------------------------------


def test_a_worker_sees_and_moves_only_their_own_cases(conn, settings, field, client, make_user):
    theirs = register(client, field.center, field.lon, field.lat)
    dispatch(conn, settings, theirs, field.person)
    other_person, *_ = helper_on(conn, "XWZ001001", name="李娜", phone="13900000000")
    others = register(client, field.center, field.lon, field.lat)
    dispatch(conn, settings, others, other_person)
    reported = register(client, field.token, field.lon, field.lat)  # registered by the worker
    closed = register(client, field.token, field.lon, field.lat)
    workflow.transition(conn, settings, closed, "rejected", actor="center", note="重复")

    listed = {c["id"]: c["standing"] for c in client.get("/api/me/cases", headers=field.token).json}
    assert listed == {theirs: ["handler"], reported: ["reporter"]}  # not another's; not a closed one

    def step(incident, to, note="", who=field.token):
        return client.post(f"/api/incidents/{incident}/transition", json={"to": to, "note": note}, headers=who)

    assert client.get(f"/api/incidents/{others}", headers=field.token).status_code == 404  # as if not there
    assert client.get(f"/api/incidents/{theirs}", headers=field.token).json["standing"] == ["handler"]
    assert step(others, "in_progress").status_code == 404
    assert step(theirs, "closed").status_code == 403  # the center checks and closes
    assert step(reported, "in_progress").status_code == 403  # reported, not dispatched to them
    assert step(theirs, "handled_on_spot").status_code == 403  # only what they registered
    assert step(theirs, "in_progress").status_code == 200  # 接单
    asked = client.post(f"/api/incidents/{theirs}/delay", json={"kind": "extend", "hours": 24, "reason": "等配件"},
                        headers=field.token)  # fmt: skip
    assert asked.status_code == 201
    assert client.post(f"/api/incidents/{others}/delay", json={"kind": "extend", "hours": 24, "reason": "x"},
                       headers=field.token).status_code == 404  # fmt: skip
    photo = client.post(f"/api/incidents/{theirs}/photos", data=jpeg(field.lon, field.lat), headers=field.token,
                        content_type="image/jpeg")  # fmt: skip
    assert photo.status_code == 201
    assert client.post(f"/api/incidents/{others}/photos", data=jpeg(), headers=field.token,
                       content_type="image/jpeg").status_code == 404  # fmt: skip
    assert step(theirs, "resolved", "已清运").status_code == 200  # 处理反馈
    assert step(reported, "handled_on_spot", "已当场清理").status_code == 200  # 一级处置
    assert client.get(photo.json["url"], headers=field.token).status_code == 200
    _, stranger = make_user("worker", person_id=other_person)
    assert client.get(photo.json["url"], headers=bearer(stranger)).status_code == 404
    events = conn.execute(sa.text("SELECT to_status, actor FROM incident_events WHERE incident_id = :i ORDER BY id"),
                          {"i": theirs}).all()  # fmt: skip
    # 接单, the request for more time (an event in the same state), 处理反馈: each the worker's own step.
    assert [(e.to_status, e.actor) for e in events][2:] == [
        ("in_progress", "wangwei"),
        ("in_progress", "wangwei"),
        ("resolved", "wangwei"),
    ]


def test_a_worker_reports_only_inside_their_own_grids(client, field):
    far = client.post("/api/incidents", json={"lon": field.lon + 0.2, "lat": field.lat, "category": "garbage",
                                              "source": "patrol"}, headers=field.token)  # fmt: skip
    assert far.status_code in (403, 422)


def test_workers_land_on_their_own_page_after_signing_in(client, make_user, conn, field):
    make_user("worker", name="zhaoliu", password="worker-pass-1", person_id=field.person)
    make_user("supervisor", name="zhanzhang", password="super-pass-1")

    def sign_in(name, password, next_url="/"):
        page = client.get("/login")
        csrf = page.get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]
        return client.post("/login", data={"name": name, "password": password, "csrf": csrf, "next": next_url})

    assert sign_in("zhaoliu", "worker-pass-1").headers["Location"] == "/worker"
    assert client.get("/worker").status_code == 200
    client.post("/logout", data={"csrf": "x"})
    client.delete_cookie("session")
    assert sign_in("zhaoliu", "worker-pass-1", "/map/grids").headers["Location"] == "/map/grids"  # asked for
    client.delete_cookie("session")
    assert sign_in("zhanzhang", "super-pass-1").headers["Location"] == "/"
    assert client.get("/worker").status_code == 403


# -- the worker's cells --------------------------------------------------------------------------


@pytest.fixture
def walker(conn):
    make_cell(conn)
    return on_duty(conn, "孙七")


def test_a_worker_s_cells_are_to_do_done_or_done_by_repair(conn, settings, walker):
    day = person_day(conn, settings, DAY, walker)
    (cell,) = day["features"]
    assert (cell["properties"]["state"], cell["properties"]["reasons"]) == ("todo", ["not_patrolled"])
    import_patrol(conn, settings, walker, "am.csv", walk_north(at(1)))
    prepare_day(conn, settings, DAY)
    (cell,) = person_day(conn, settings, DAY, walker)["features"]
    assert (cell["properties"]["state"], cell["properties"]["rule_visits"], cell["properties"]["needed"]) == (
        "todo", 1, 2)  # fmt: skip
    assert cell["properties"]["times"][0]["entry"].startswith("2026-11-20T01:")
    asked = repairs.request_repair(conn, settings, person_id=walker, grid_code="R", day=DAY, claimed_at=at(7),
                                   reason="终端没电", actor="孙七")  # fmt: skip
    repairs.decide_repair(conn, asked["id"], approve=True, note="", actor="站长")
    ensure_coverage(conn, settings, DAY)
    repaired = person_day(conn, settings, DAY, walker)
    assert repaired["features"][0]["properties"]["state"] == "repaired"
    assert repaired["counts"] == {"done": 0, "repaired": 1, "todo": 0}


def test_two_visits_far_enough_apart_make_a_cell_done(conn, settings, walker):
    import_patrol(conn, settings, walker, "am.csv", walk_north(at(1)))
    import_patrol(conn, settings, walker, "pm.csv", walk_north(at(6)))
    prepare_day(conn, settings, DAY)
    assert person_day(conn, settings, DAY, walker)["counts"] == {"done": 1, "repaired": 0, "todo": 0}


def test_my_day_through_the_api(conn, settings, walker, make_user, client):
    _, token = make_user("worker", person_id=walker)
    import_patrol(conn, settings, walker, "am.csv", walk_north(at(1)))
    day = client.get(f"/api/me/day?date={DAY}", headers=bearer(token))
    assert day.status_code == 200 and day.json["counts"]["todo"] == 1
    assert day.json["features"][0]["properties"]["visits"] == 1  # brought up to date by the request
    future = client.get(f"/api/me/day?date={dt.date.today() + dt.timedelta(days=3)}", headers=bearer(token))
    assert future.status_code == 200 and future.json["notice"]


# -- a track sent in pieces -----------------------------------------------------------------------


def pieces(gap_s: float) -> tuple[bytes, bytes]:
    """walk_north cut in two uploads: the second starts *gap_s* after the first ends (shifted in time only)."""
    header, *fixes = walk_north(at(1)).decode().splitlines()
    first, second = fixes[:18], fixes[18:]
    last = dt.datetime.fromisoformat(first[-1].split(",")[0])
    shift = dt.timedelta(seconds=gap_s) - (dt.datetime.fromisoformat(second[0].split(",")[0]) - last)
    moved = [",".join([(dt.datetime.fromisoformat(r.split(",")[0]) + shift).isoformat(), *r.split(",")[1:]])
             for r in second]  # fmt: skip
    return "\n".join([header, *first]).encode(), "\n".join([header, *moved]).encode()


def test_a_track_sent_in_pieces_is_one_track_and_covers_what_one_upload_does(conn, settings, walker):
    whole = on_duty(conn, "周八")
    import_patrol(conn, settings, whole, "whole.csv", walk_north(at(1)))
    first, second = pieces(10)
    import_patrol(conn, settings, walker, "live.geojson.1.csv", first)
    import_patrol(conn, settings, walker, "live.geojson.2.csv", second)
    tracks = conn.execute(sa.text("SELECT count(*), sum(fix_count) FROM patrol_tracks WHERE person_id = :p"),
                          {"p": walker}).one()  # fmt: skip
    assert tuple(tracks) == (1, 36)
    prepare_day(conn, settings, DAY)
    covered = dict(conn.execute(sa.text("SELECT person_id, covered_m2 FROM coverage WHERE day = :d"), {"d": DAY}).all())
    assert covered[walker] == pytest.approx(covered[whole], rel=1e-6)


def test_pieces_join_up_to_the_track_gap_just_inside_and_outside(conn, settings, walker):
    first, second = pieces(settings.track_gap_s)  # exactly the gap: one track
    import_patrol(conn, settings, walker, "a.csv", first)
    import_patrol(conn, settings, walker, "b.csv", second)
    assert conn.execute(sa.text("SELECT count(*) FROM patrol_tracks WHERE person_id = :p"), {"p": walker}).scalar() == 1
    other = on_duty(conn, "郑十")
    first, second = pieces(settings.track_gap_s + 1)  # a second more: two
    import_patrol(conn, settings, other, "a.csv", first)
    import_patrol(conn, settings, other, "b.csv", second)
    assert conn.execute(sa.text("SELECT count(*) FROM patrol_tracks WHERE person_id = :p"), {"p": other}).scalar() == 2


def test_a_piece_at_an_impossible_speed_starts_a_track_of_its_own(conn, settings, walker):
    first, _ = pieces(10)
    import_patrol(conn, settings, walker, "a.csv", first)
    last = dt.datetime.fromisoformat(first.decode().splitlines()[-1].split(",")[0])
    jump = f"time,lon,lat\n{(last + dt.timedelta(seconds=10)).isoformat()},115.40,37.80\n" \
           f"{(last + dt.timedelta(seconds=20)).isoformat()},115.40,37.8001\n"  # fmt: skip
    import_patrol(conn, settings, walker, "b.csv", jump.encode())
    assert conn.execute(sa.text("SELECT count(*) FROM patrol_tracks WHERE person_id = :p"), {"p": walker}).scalar() == 2


def test_a_piece_that_extends_a_track_makes_the_day_stale_for_its_worker(conn, settings, walker):
    first, second = pieces(10)
    import_patrol(conn, settings, walker, "a.csv", first)
    assert ensure_coverage(conn, settings, DAY) is None
    conn.execute(sa.text("UPDATE patrol_tracks SET updated_at = updated_at - interval '2 minutes'"))
    conn.execute(sa.text("UPDATE coverage SET computed_at = computed_at - interval '1 minute'"))
    conn.execute(sa.text("UPDATE grids SET recorded_at = recorded_at - interval '2 minutes'"))
    conn.execute(sa.text("UPDATE assignments SET recorded_at = recorded_at - interval '2 minutes'"))
    assert ensure_coverage(conn, settings, DAY) == []
    import_patrol(conn, settings, walker, "b.csv", second)  # no new track: the first one grows
    assert conn.execute(sa.text("SELECT count(*) FROM patrol_tracks")).scalar() == 1
    assert ensure_coverage(conn, settings, DAY) == [walker]


def test_an_upload_brings_its_day_up_to_date_in_the_background(databases, settings):
    """No page asks: the day is computed shortly after the upload, and a page then finds nothing to do."""
    import json
    import time
    import urllib.request
    from zoneinfo import ZoneInfo

    from geogrid import accounts
    from geogrid.testing import live_server
    from tests.conftest import demo_engine

    engine = demo_engine(databases)
    with engine.begin() as conn:
        person, lon, lat = helper_on(conn, CELL)
        _, token = accounts.create_user(conn, "wangwei", "worker", person_id=person)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    walk = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat + i * 0.0001]},
         "properties": {"time": (now - dt.timedelta(seconds=60 - 10 * i)).isoformat(), "accuracy": 5}}
        for i in range(6)]}  # fmt: skip
    quick = dataclasses.replace(settings, refresh_s=0.2)
    try:
        with live_server(create_app(quick, bind=engine)) as base:
            sent = urllib.request.Request(base + "/api/patrols?format=geojson", data=json.dumps(walk).encode(),
                                          headers={"Authorization": f"Bearer {token}"}, method="POST")  # fmt: skip
            with urllib.request.urlopen(sent) as answer:
                assert json.load(answer)["days"] == [today.isoformat()]
            rows = []
            for _ in range(100):
                with engine.connect() as conn:
                    rows = conn.execute(sa.text("SELECT grid_code, visit_count FROM coverage WHERE day = :d "
                                                "AND person_id = :p"), {"d": today, "p": person}).all()  # fmt: skip
                if rows:
                    break
                time.sleep(0.1)
            assert (CELL, 1) in [tuple(r) for r in rows]
            with engine.begin() as conn:
                assert ensure_coverage(conn, settings, today) == []  # a page finds the day up to date
    finally:
        engine.dispose()
