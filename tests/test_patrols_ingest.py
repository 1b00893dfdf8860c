"""Patrol uploads: safe parsing, cleaning by reason, idempotent storage, real device files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from geogrid.errors import InvalidInput
from geogrid.patrols.clean import clean
from geogrid.patrols.files import Fix, read_csv, read_gpx
from geogrid.patrols.ingest import import_patrol
from tests.conftest import ROOT, bearer

GPX_DIR = ROOT / "tests" / "data" / "gpx"
T0 = dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC)
DEG_PER_M = 1 / 111_320


def gpx(points: str, doctype: str = "") -> bytes:
    return (f'<?xml version="1.0"?>{doctype}<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
            f"<trk><trkseg>{points}</trkseg></trk></gpx>").encode()  # fmt: skip


def walk(n: int, step_s: int = 10, step_m: float = 10.0, start=T0, lon=115.25, lat=37.755) -> list[Fix]:
    return [Fix(start + dt.timedelta(seconds=i * step_s), lon, lat + i * step_m * DEG_PER_M) for i in range(n)]


@pytest.fixture
def person(conn) -> int:
    return conn.execute(sa.text("INSERT INTO people (name) VALUES ('赵六') RETURNING id")).scalar_one()


def test_xml_external_entities_and_bombs_are_refused():
    xxe = '<!DOCTYPE gpx [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    with pytest.raises(InvalidInput, match="DOCTYPE or entities is refused"):
        read_gpx(gpx('<trkpt lat="37" lon="115"><name>&xxe;</name></trkpt>', xxe))
    laughs = ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
              '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>')  # fmt: skip
    with pytest.raises(InvalidInput, match="DOCTYPE or entities is refused"):
        read_gpx(gpx('<trkpt lat="37" lon="115"><name>&lol3;</name></trkpt>', laughs))


def test_malformed_files_name_the_line_or_element():
    with pytest.raises(InvalidInput, match="not well-formed XML at line 1, column"):
        read_gpx(b'<?xml version="1.0"?><gpx version="1.1"><trk><trkseg><trkpt lat="37"')
    with pytest.raises(InvalidInput, match=r"trk 1 trkseg 1 trkpt 1: lon 'undefined' is not a number"):
        read_gpx((GPX_DIR / "togeojson-bad.gpx").read_bytes(), name="togeojson-bad.gpx")
    with pytest.raises(InvalidInput, match="not a GPX document"):
        read_gpx(b"<kml></kml>")
    with pytest.raises(InvalidInput, match="fixes.csv: line 3: lat '91.5' is out of range"):
        read_csv(b"time,lon,lat\n2026-11-20T08:00:00,115.2,37.7\n2026-11-20T08:00:10,115.2,91.5\n")


def test_cleaning_counts_each_reason_and_splits_on_gaps(settings):
    fixes = walk(6)
    fixes.insert(3, Fix(fixes[2].time, 115.25, 37.7551))  # same time again
    fixes.insert(5, Fix(fixes[1].time, 115.25, 37.7551))  # back in time
    fixes.append(
        Fix(fixes[-1].time + dt.timedelta(seconds=10), 115.25 + 2000 * DEG_PER_M / 0.79, fixes[-1].lat)
    )  # 2 km in 10 s
    fixes.append(Fix(fixes[-2].time + dt.timedelta(seconds=20), 115.25, fixes[-2].lat, accuracy_m=120.0))
    fixes += walk(3, start=fixes[-3].time + dt.timedelta(minutes=15))  # after a 15 min pause
    fixes.append(Fix(None, 115.25, 37.76))
    tracks, dropped = clean(fixes, settings)
    assert dict(dropped) == {"no_time": 1, "poor_accuracy": 1, "duplicate_time": 1, "time_backwards": 1,
                             "impossible_jump": 1, "tracks": 2}  # fmt: skip
    assert [len(t) for t in tracks] == [6, 3]


def test_a_track_that_starts_with_a_jump_loses_the_jump_not_the_walk(settings):
    fixes = walk(20)
    fixes[0] = Fix(fixes[0].time, 115.25 + 2000 * DEG_PER_M / 0.79, fixes[0].lat)  # the first fix is 2 km off
    tracks, dropped = clean(fixes, settings)
    assert [len(t) for t in tracks] == [19] and dropped["impossible_jump"] == 1
    assert tracks[0][0] == fixes[1]


def test_a_slow_walk_is_kept_whole(settings):
    tracks, dropped = clean(walk(100, step_s=10, step_m=14.0), settings)  # 1.4 m/s
    assert [len(t) for t in tracks] == [100] and dropped["impossible_jump"] == 0


def test_csv_naive_times_take_the_configured_zone_and_headers_are_configurable(conn, settings, person):
    data = b"ts,x,y,acc\n2026-11-20 08:00:00,115.25,37.755,5\n2026-11-20 08:00:10,115.25,37.7551,5\n"
    report = import_patrol(conn, settings, person, "fixes.csv", data,
                           csv_columns={"time": "ts", "lon": "x", "lat": "y", "accuracy": "acc"})  # fmt: skip
    assert report.stored == 2
    first = conn.execute(sa.text("SELECT min(fixed_at) FROM gps_fixes WHERE person_id = :p"), {"p": person}).scalar()
    assert first == dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC)  # 08:00 in Asia/Shanghai


def test_reimport_adds_nothing(conn, settings, person):
    data = (GPX_DIR / "togeojson-run_gpxtpx.gpx").read_bytes()
    first = import_patrol(conn, settings, person, "run.gpx", data)
    assert first.stored == 42 and len(first.tracks) == 1
    again = import_patrol(conn, settings, person, "run.gpx", data)
    assert again.stored == 0 and again.already_there == 42 and again.tracks == first.tracks
    counts = conn.execute(sa.text(
        "SELECT (SELECT count(*) FROM gps_fixes), (SELECT count(*) FROM patrol_tracks), "
        "(SELECT fix_count FROM patrol_tracks), (SELECT ST_NPoints(geom) FROM patrol_tracks)"
    )).one()  # fmt: skip
    assert tuple(counts) == (42, 1, 42, 42)


def test_a_bad_file_writes_nothing(conn, settings, person):
    data = b"time,lon,lat\n2026-11-20T08:00:00,115.2,37.7\n2026-11-20T08:00:10,abc,37.7\n"
    with pytest.raises(InvalidInput, match="line 3: lon 'abc'"):
        import_patrol(conn, settings, person, "fixes.csv", data)
    assert conn.execute(sa.text("SELECT count(*) FROM gps_fixes")).scalar() == 0


@pytest.mark.parametrize("path", sorted(p for p in GPX_DIR.glob("*.gpx") if p.name != "togeojson-bad.gpx"),
                         ids=lambda p: p.name)  # fmt: skip
def test_real_gpx_files_from_several_devices_import(conn, settings, person, path: Path):
    report = import_patrol(conn, settings, person, path.name, path.read_bytes())
    assert report.stored + sum(report.dropped.values()) + report.already_there == report.read
    stored = conn.execute(sa.text("SELECT count(*) FROM gps_fixes WHERE person_id = :p"), {"p": person}).scalar()
    assert stored == report.stored


def test_geojson_linestring_with_coord_times(conn, settings, person):
    import json

    times = ["2026-11-20T00:00:00Z", "2026-11-20T00:00:10Z", "2026-11-20T00:00:20Z"]
    line = {"type": "LineString", "coordinates": [[115.25, 37.755], [115.25, 37.7551], [115.25, 37.7552]]}
    doc = {"type": "FeatureCollection",
           "features": [{"type": "Feature", "properties": {"coordTimes": times}, "geometry": line}]}  # fmt: skip
    report = import_patrol(conn, settings, person, "track.geojson", json.dumps(doc).encode())
    assert report.stored == 3


def test_api_upload_rules(client, make_user, conn):
    worker, token = make_user("worker")
    other = conn.execute(sa.text("INSERT INTO people (name) VALUES ('someone else') RETURNING id")).scalar_one()
    body = (GPX_DIR / "togeojson-strava.gpx").read_bytes()
    own = client.post("/api/patrols?format=gpx", data=body, headers=bearer(token))
    assert own.status_code == 201 and own.json["stored"] == 3
    assert client.post(f"/api/patrols?format=gpx&person={other}", data=body, headers=bearer(token)).status_code == 403
    _, supervisor = make_user("supervisor")
    assert client.post("/api/patrols?format=gpx", data=body, headers=bearer(supervisor)).status_code == 422
    ok = client.post(f"/api/patrols?format=gpx&person={other}", data=body, headers=bearer(supervisor))
    assert ok.status_code == 201 and ok.json["stored"] == 3
    bad = client.post(
        "/api/patrols?format=gpx", data=(GPX_DIR / "togeojson-bad.gpx").read_bytes(), headers=bearer(token)
    )
    assert bad.status_code == 422 and "trkpt 1" in bad.json["detail"]
