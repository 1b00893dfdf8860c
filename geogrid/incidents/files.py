"""Read incident files (CSV or GeoJSON) into rows for the bulk import, keeping bad rows' reasons."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

from geogrid.errors import InvalidInput
from geogrid.incidents.intake import NewIncident

#: Accepted header names for each field (lower case).
ALIASES = {
    "external_id": ("external_id", "id", "unique key", "unique_key"),
    "lon": ("lon", "lng", "longitude", "x"),
    "lat": ("lat", "latitude", "y"),
    "category": ("category",),
    "source": ("source",),
    "description": ("description", "descriptor"),
    "reporter": ("reporter",),
    "reported_at": ("reported_at", "created date", "created_date", "time"),
    "gps_accuracy_m": ("gps_accuracy_m", "accuracy"),
}

Row = tuple[int, dict, NewIncident | str]


def read_incidents(
    path: str | Path, *, default_category: str | None = None, default_source: str = "hotline"
) -> Iterator[Row]:
    """Rows of a CSV (header line, UTF-8) or GeoJSON FeatureCollection of points."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        yield from _csv_rows(path, default_category, default_source)
    elif path.suffix.lower() in (".geojson", ".json"):
        yield from _geojson_rows(path, default_category, default_source)
    else:
        raise InvalidInput(f"{path.name}: incidents come as .csv or .geojson")


def _csv_rows(path: Path, default_category, default_source) -> Iterator[Row]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise InvalidInput(f"{path.name}: empty file")
        columns = _columns(reader.fieldnames)
        for missing in ("lon", "lat"):
            if missing not in columns:
                raise InvalidInput(f"{path.name}: no {missing} column (headers: {', '.join(reader.fieldnames)})")
        for raw in reader:
            values = {field: raw.get(header) for field, header in columns.items()}
            yield reader.line_num, raw, _parse(values, default_category, default_source)


def _geojson_rows(path: Path, default_category, default_source) -> Iterator[Row]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path.name}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise InvalidInput(f"{path.name}: not a GeoJSON FeatureCollection")
    for n, feature in enumerate(doc["features"], start=1):
        props = (feature or {}).get("properties") or {}
        geometry = (feature or {}).get("geometry") or {}
        coords = geometry.get("coordinates")
        if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
            yield n, props, "not a Point feature"
            continue
        lowered = {k.lower(): v for k, v in props.items()}
        values = {field: next((lowered[a] for a in names if a in lowered), None) for field, names in ALIASES.items()}
        values["lon"], values["lat"] = coords[0], coords[1]
        if values["external_id"] is None and feature.get("id") is not None:
            values["external_id"] = feature["id"]
        yield n, props, _parse(values, default_category, default_source)


def _columns(headers: list[str]) -> dict[str, str]:
    lowered = {h.strip().lower(): h for h in headers if h}
    return {field: lowered[a] for field, names in ALIASES.items() for a in names if a in lowered and field}


def _parse(values: dict, default_category, default_source) -> NewIncident | str:
    try:
        lon, lat = float(values["lon"]), float(values["lat"])
    except (TypeError, ValueError):
        return f"lon/lat are not numbers: {values.get('lon')!r}, {values.get('lat')!r}"
    reported_at = None
    if values.get("reported_at"):
        try:
            reported_at = _parse_time(str(values["reported_at"]))
        except ValueError:
            return f"reported_at is not a date-time: {values['reported_at']!r}"
    accuracy = values.get("gps_accuracy_m")
    try:
        accuracy = float(accuracy) if accuracy not in (None, "") else None
    except ValueError:
        return f"accuracy is not a number: {accuracy!r}"
    category = values.get("category") or default_category
    if not category:
        return "no category (give the column or --category)"
    return NewIncident(
        lon=lon, lat=lat, category=str(category).strip(), source=str(values.get("source") or default_source).strip(),
        description=str(values.get("description") or ""), reporter=values.get("reporter") or None,
        reported_at=reported_at, gps_accuracy_m=accuracy,
        external_id=str(values["external_id"]).strip() if values.get("external_id") not in (None, "") else None,
    )  # fmt: skip


def _parse_time(text: str) -> dt.datetime:
    """ISO 8601, or the US forms of 311 exports (11/20/2026 08:00:00 AM, 11/20/2026 08:00)."""
    text = text.strip()
    try:
        # First: a failed strptime costs ~5 us, twice per ISO row before (9.6 -> 0.5 us a row).
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            pass
    raise ValueError(f"not a date-time: {text!r}")


def neutralise(value) -> str:
    """A cell safe to open in a spreadsheet: formulas (=, +, -, @) are quoted as text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
