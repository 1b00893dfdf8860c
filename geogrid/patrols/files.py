"""Read GPS fixes from GPX 1.0/1.1, CSV and GeoJSON, safely and with errors that name the place.

GPX is parsed with defusedxml: a document with a DOCTYPE (so no external entities and
no entity expansion, i.e. no billion laughs) is refused before anything reads it, and
nothing is fetched from the network. Naive times take the configured zone.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
from zoneinfo import ZoneInfo

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml import ElementTree as SafeET

from geogrid.errors import InvalidInput

GPX_NAMESPACES = ("http://www.topografix.com/GPX/1/1", "http://www.topografix.com/GPX/1/0", "")


@dataclasses.dataclass(frozen=True)
class Fix:
    """One GPS fix: a moment (UTC-aware), WGS84 lon/lat, and the reported accuracy in metres."""

    time: dt.datetime | None
    lon: float
    lat: float
    accuracy_m: float | None = None
    #: Which recorded segment it came from (a GPX trkseg, say); cleaning never joins segments.
    segment: int = 0


def read_fixes(name: str, data: bytes, *, timezone: str, csv_columns: dict[str, str] | None = None) -> list[Fix]:
    """Fixes from a file's bytes; the format comes from *name*'s suffix."""
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if suffix == "gpx":
        return read_gpx(data, name=name, timezone=timezone)
    if suffix == "csv":
        return read_csv(data, name=name, timezone=timezone, columns=csv_columns)
    if suffix in ("geojson", "json"):
        return read_geojson(data, name=name, timezone=timezone)
    raise InvalidInput("{name}: patrol tracks come as .gpx, .csv or .geojson", name=name)


def read_gpx(data: bytes, *, name: str = "track.gpx", timezone: str = "UTC") -> list[Fix]:
    """Track points (each trkseg its own segment) and waypoints of a GPX 1.0 or 1.1 file."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden):
        raise InvalidInput(
            "{name}: GPX with a DOCTYPE or entities is refused (XML external entities, entity bombs)", name=name
        ) from None
    except SafeET.ParseError as exc:
        line, column = exc.position
        raise InvalidInput(
            "{name}: not well-formed XML at line {line}, column {column}", name=name, line=line, column=column
        ) from None
    ns = _namespace(root, name)
    fixes: list[Fix] = []
    segment = 0
    for t, track in enumerate(root.iter(f"{ns}trk"), start=1):
        for s, seg in enumerate(track.iter(f"{ns}trkseg"), start=1):
            segment += 1
            for p, point in enumerate(seg.iter(f"{ns}trkpt"), start=1):
                fixes.append(_gpx_point(point, ns, f"{name}: trk {t} trkseg {s} trkpt {p}", timezone, segment))
    segment += 1
    for w, point in enumerate(root.iter(f"{ns}wpt"), start=1):
        fixes.append(_gpx_point(point, ns, f"{name}: wpt {w}", timezone, segment))
    return fixes


def _namespace(root, name: str) -> str:
    tag = root.tag
    ns = tag[1:].split("}")[0] if tag.startswith("{") else ""
    local = tag.split("}")[-1]
    if local != "gpx" or ns not in GPX_NAMESPACES:
        raise InvalidInput("{name}: not a GPX document (root element is {local!r})", name=name, local=local)
    return f"{{{ns}}}" if ns else ""


def _gpx_point(point, ns: str, where: str, timezone: str, segment: int) -> Fix:
    lon = _coordinate(point.get("lon"), "lon", where, 180)
    lat = _coordinate(point.get("lat"), "lat", where, 90)
    time_el = point.find(f"{ns}time")
    time = _time(time_el.text, where, timezone) if time_el is not None and (time_el.text or "").strip() else None
    return Fix(time=time, lon=lon, lat=lat, segment=segment)


def read_csv(
    data: bytes, *, name: str = "fixes.csv", timezone: str = "UTC", columns: dict[str, str] | None = None
) -> list[Fix]:
    """Fixes from CSV with columns time, lon, lat [, accuracy] (header names configurable)."""
    names = {"time": "time", "lon": "lon", "lat": "lat", "accuracy": "accuracy", **(columns or {})}
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("{name}: not UTF-8 text ({exc})", name=name, exc=exc) from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [names[k] for k in ("time", "lon", "lat") if names[k] not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(
            "{name}: missing column(s) {missing} (header: {fieldnames})",
            name=name,
            missing=", ".join(missing),
            fieldnames=reader.fieldnames,
        )
    fixes = []
    for row in reader:
        where = f"{name}: line {reader.line_num}"
        accuracy = row.get(names["accuracy"])
        fixes.append(Fix(
            time=_time(row[names["time"]], where, timezone),
            lon=_coordinate(row[names["lon"]], "lon", where, 180),
            lat=_coordinate(row[names["lat"]], "lat", where, 90),
            accuracy_m=_accuracy(accuracy, where) if accuracy not in (None, "") else None,
        ))  # fmt: skip
    return fixes


def read_geojson(data: bytes, *, name: str = "track.geojson", timezone: str = "UTC") -> list[Fix]:
    """Point features with a ``time`` property, or LineStrings with ``coordTimes``/``times``."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("{name}: not valid JSON ({exc})", name=name, exc=exc) from None
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise InvalidInput("{name}: not a GeoJSON FeatureCollection", name=name)
    fixes = []
    for n, feature in enumerate(features, start=1):
        where = f"{name}: feature {n}"
        geometry = (feature or {}).get("geometry") or {}
        props = (feature or {}).get("properties") or {}
        kind, coords = geometry.get("type"), geometry.get("coordinates")
        if kind == "Point" and isinstance(coords, list) and len(coords) >= 2:
            fixes.append(Fix(_time(str(props.get("time", "")), where, timezone),
                             _coordinate(coords[0], "lon", where, 180), _coordinate(coords[1], "lat", where, 90),
                             _accuracy(props["accuracy"], where) if props.get("accuracy") is not None else None,
                             segment=0))  # fmt: skip
        elif kind == "LineString" and isinstance(coords, list):
            times = props.get("coordTimes") or props.get("times")
            if not isinstance(times, list) or len(times) != len(coords):
                raise InvalidInput("{where}: a LineString needs coordTimes, one per position", where=where)
            for i, (position, time) in enumerate(zip(coords, times, strict=True), start=1):
                spot = f"{where} position {i}"
                if not isinstance(position, list) or len(position) < 2:
                    raise InvalidInput("{spot}: not a position", spot=spot)
                fixes.append(Fix(_time(str(time), spot, timezone), _coordinate(position[0], "lon", spot, 180),
                                 _coordinate(position[1], "lat", spot, 90), segment=n))  # fmt: skip
        else:
            raise InvalidInput(
                "{where}: {kind}; patrol fixes are Points or LineStrings", where=where, kind=kind or "no geometry"
            )
    return fixes


def _coordinate(raw, axis: str, where: str, limit: float) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidInput("{where}: {axis} {raw!r} is not a number", where=where, axis=axis, raw=raw) from None
    if not math.isfinite(value) or abs(value) > limit:
        raise InvalidInput("{where}: {axis} {raw!r} is out of range", where=where, axis=axis, raw=raw)
    return value


def _accuracy(raw, where: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidInput("{where}: accuracy {raw!r} is not a number", where=where, raw=raw) from None
    if not math.isfinite(value) or value < 0:
        raise InvalidInput("{where}: accuracy {raw!r} must be 0 or more metres", where=where, raw=raw)
    return value


def _time(raw: str, where: str, timezone: str) -> dt.datetime:
    text = (raw or "").strip()
    if not text:
        raise InvalidInput("{where}: no time", where=where)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("{where}: time {raw!r} is not ISO 8601", where=where, raw=raw) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(dt.UTC)
