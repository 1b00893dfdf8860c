"""Read incident files (CSV or GeoJSON) into rows for the bulk import, keeping bad rows' reasons.

Headers are recognised in English and Chinese (工单编号, 经度, 纬度, 受理时间, 问题类型...),
categories and sources by code or by their Chinese or English names. A row's id comes
from its id column (``--id-column``, else a recognised header); a row without one gets
an id made from its content (a hash of the normalised row), so importing the same file
again adds nothing, whenever it is run.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from geogrid.errors import InvalidInput
from geogrid.incidents.intake import ROW_ID, NewIncident
from geogrid.incidents.taxonomy import categories

#: Accepted header names for each field (compared case-folded, spaces trimmed), in order of preference.
ALIASES = {
    "external_id": ("external_id", "id", "case_no", "case no", "case_id", "unique key", "unique_key", "工单编号",
                    "工单号", "案件编号", "案卷编号", "编号", "事件编号"),
    "lon": ("lon", "lng", "long", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "category": ("category", "类别", "问题类型", "事件类型", "案件类型", "分类"),
    "source": ("source", "来源", "渠道", "问题来源"),
    "description": ("description", "descriptor", "描述", "问题描述", "事件描述", "内容", "诉求内容"),
    "reporter": ("reporter", "反映人", "上报人", "报告人", "诉求人"),
    "reported_at": ("reported_at", "created date", "created_date", "time", "date", "datetime", "受理时间",
                    "上报时间", "发生时间", "登记时间", "创建时间", "时间", "日期"),
    "gps_accuracy_m": ("gps_accuracy_m", "accuracy", "精度"),
}  # fmt: skip

#: Sources by their Chinese names as well as their codes.
SOURCE_NAMES = {"巡查": "patrol", "网格员巡查": "patrol", "入户走访": "home_visit", "走访": "home_visit",
                "接访": "reception", "来访": "reception", "电话": "phone", "热线": "hotline", "12345": "hotline",
                "12345热线": "hotline", "小程序": "app", "微信": "app", "app": "app", "APP": "app"}  # fmt: skip

Row = tuple[int, dict, NewIncident | str]


class IncidentRows:
    """The rows of an incident file, read lazily; ``columns`` says which header fed which field.

    Iterate it for ``(line, raw row, NewIncident or the reason it was refused)``.
    """

    def __init__(self, path: str | Path, *, default_category: str | None = None, default_source: str = "hotline",
                 id_column: str | None = None, categories_file: Path | None = None,
                 system: str | None = None) -> None:  # fmt: skip
        self.path = Path(path)
        if self.path.suffix.lower() not in (".csv", ".geojson", ".json"):
            raise InvalidInput("{name}: incidents come as .csv or .geojson", name=self.path.name)
        self.default_category, self.default_source = default_category, default_source
        self.id_column, self.system = id_column, system
        self.names = _category_names(categories_file)
        #: field -> the file's header (filled in when reading starts).
        self.columns: dict[str, str] = {}

    def __iter__(self) -> Iterator[Row]:
        if self.path.suffix.lower() == ".csv":
            return self._csv()
        return self._geojson()

    def id_source(self) -> str:
        """Where the ids came from, for the import's summary."""
        column = self.columns.get("external_id")
        return f"column {column!r}" if column else "no id column"

    def _csv(self) -> Iterator[Row]:
        with open(self.path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                raise InvalidInput("{name}: empty file", name=self.path.name)
            self.columns = self._columns(reader.fieldnames)
            for missing in ("lon", "lat"):
                if missing not in self.columns:
                    raise InvalidInput(
                        "{name}: no {missing} column (headers: {fieldnames})",
                        name=self.path.name,
                        missing=missing,
                        fieldnames=", ".join(reader.fieldnames),
                    )
            for raw in reader:
                values = {field: raw.get(header) for field, header in self.columns.items()}
                yield reader.line_num, raw, self._parse(values, raw)

    def _geojson(self) -> Iterator[Row]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput("{name}: not valid JSON: {exc}", name=self.path.name, exc=exc) from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
            raise InvalidInput("{name}: not a GeoJSON FeatureCollection", name=self.path.name)
        keys = {k for feature in doc["features"] if isinstance(feature, dict)
                for k in (feature.get("properties") or {})}  # fmt: skip
        self.columns = self._columns(sorted(keys))
        for n, feature in enumerate(doc["features"], start=1):
            props = (feature or {}).get("properties") or {}
            geometry = (feature or {}).get("geometry") or {}
            coords = geometry.get("coordinates")
            if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
                yield n, props, "not a Point feature"
                continue
            values = {field: props.get(header) for field, header in self.columns.items()}
            values["lon"], values["lat"] = coords[0], coords[1]
            if values.get("external_id") in (None, "") and feature.get("id") is not None:
                values["external_id"] = feature["id"]
            yield n, props, self._parse(values, {**props, "__coordinates__": coords[:2]})

    def _columns(self, headers: list[str]) -> dict[str, str]:
        folded = {h.strip().casefold(): h for h in headers if h}
        columns = {}
        for field, names in ALIASES.items():
            found = next((folded[a.casefold()] for a in names if a.casefold() in folded), None)
            if found is not None:
                columns[field] = found
        if self.id_column is not None:
            if self.id_column.strip().casefold() not in folded:
                raise InvalidInput("{name}: no column {id_column!r} for --id-column (headers: {headers})",
                                   name=self.path.name, id_column=self.id_column,
                                   headers=", ".join(h for h in headers if h))  # fmt: skip
            columns["external_id"] = folded[self.id_column.strip().casefold()]
        return columns

    def _parse(self, values: dict, raw: dict) -> NewIncident | str:
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
        category = str(values.get("category") or "").strip() or self.default_category
        if not category:
            return "no category (give the column or --category)"
        source = str(values.get("source") or "").strip() or self.default_source
        external_id = values.get("external_id")
        external_id = str(external_id).strip() if external_id not in (None, "") else ""
        return NewIncident(
            lon=lon, lat=lat, category=self.names.get(category.casefold(), category),
            source=SOURCE_NAMES.get(source, source), description=str(values.get("description") or ""),
            reporter=values.get("reporter") or None, reported_at=reported_at, gps_accuracy_m=accuracy,
            external_id=external_id or row_id(raw), system=self.system,
        )  # fmt: skip


def read_incidents(path: str | Path, **options) -> IncidentRows:
    """The rows of a CSV (header line, UTF-8) or GeoJSON FeatureCollection of points (see :class:`IncidentRows`)."""
    return IncidentRows(path, **options)


def row_id(raw: dict) -> str:
    """A stable id for a row that has none: a hash of its normalised content.

    Keys are trimmed and case-folded, values trimmed, empty ones dropped and the rest
    sorted, so the same row gives the same id in any column order, from any file name,
    at any time; two rows that differ in any value get different ids.
    """
    items = sorted((str(k).strip().casefold(), str(v).strip()) for k, v in raw.items()
                   if k is not None and v not in (None, "") and str(v).strip())  # fmt: skip
    return ROW_ID + hashlib.sha256(json.dumps(items, ensure_ascii=False).encode()).hexdigest()[:32]


def _category_names(path: Path | None) -> dict[str, str]:
    """Category codes by their code, Chinese and English names (case-folded)."""
    names = {}
    for c in categories(path).values():
        for name in (c.en, c.zh, c.code):
            names[name.casefold()] = c.code
    return names


#: Date-time forms seen in Chinese and US exports, tried after ISO 8601.
_FORMATS = (
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日%H:%M", "%Y年%m月%d日", "%Y.%m.%d %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M",
)  # fmt: skip


def _parse_time(text: str) -> dt.datetime:
    """ISO 8601, the forms of Chinese exports (2026/11/20 08:00, 2026年11月20日 08:00) and of 311 exports."""
    text = text.strip()
    try:
        # First: a failed strptime costs ~5 us, twice per ISO row before (9.6 -> 0.5 us a row).
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            pass
    raise ValueError(f"not a date-time: {text!r}")


def neutralise(value) -> str:
    """A cell safe to open in a spreadsheet: formulas (=, +, -, @) are quoted as text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
