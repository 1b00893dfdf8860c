"""What users type, parsed once for both faces: bbox, moments, dates, days, levels, codes, positions.

The API turns an :class:`~geogrid.errors.InvalidInput` from here into a 422, the CLI
into one line and exit status 2, with the same words. Nothing here touches the
database; whether a grid code names a grid is :func:`geogrid.grids.hierarchy.require`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from zoneinfo import ZoneInfo

from geogrid.errors import InvalidInput

_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_PAIR = re.compile(rf"^\s*({_NUMBER})\s*[,，\s]\s*({_NUMBER})\s*$")


def bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` in EPSG:4326, checked; None when not given."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise InvalidInput("bbox must be four numbers minlon,minlat,maxlon,maxlat: {text!r}", text=text) from None
    if len(values) != 4:
        raise InvalidInput("bbox must have four numbers, not {n_values}", n_values=len(values))
    xmin, ymin, xmax, ymax = values
    if not (-180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90):
        raise InvalidInput("bbox must be minlon,minlat,maxlon,maxlat within -180..180, -90..90")
    return values


def _zone(zone: str | None) -> dt.tzinfo:
    return ZoneInfo(zone) if zone else dt.UTC


def day(text: str | None, name: str = "date") -> dt.date:
    """A calendar day ``YYYY-MM-DD`` (required)."""
    if not text:
        raise InvalidInput("give the day: {name}=YYYY-MM-DD", name=name)
    text = text.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise InvalidInput("{name} must be a date YYYY-MM-DD, not {text!r}", name=name, text=text)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            "{name} must be a date YYYY-MM-DD, not {text!r} (no such day)", name=name, text=text
        ) from None


def today(zone: str) -> dt.date:
    """Today's date in the time zone *zone* (the center's: what its pages call today)."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(zone)).date()


def optional_day(text: str | None, name: str = "date") -> dt.date | None:
    """A calendar day, or None when not given."""
    return None if text in (None, "") else day(text, name)


def moment(text: str | None, name: str = "at", zone: str | None = None) -> dt.datetime | None:
    """An ISO 8601 date-time (``2026-11-20T08:00``, ``2026-11-20 08:00+08:00``); naive ones are in *zone*
    (UTC when None). A bare date is its first moment. None when not given."""
    if text in (None, ""):
        return None
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return dt.datetime.combine(day(text, name), dt.time.min, tzinfo=_zone(zone))
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            "{name} must be an ISO date or date-time like 2026-11-20 or 2026-11-20T08:00, not {text!r}",
            name=name,
            text=text,
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=_zone(zone))


def at(text: str | None, zone: str | None = None, name: str = "at") -> dt.datetime | None:
    """A moment to look at the past: a date means its end (what was valid that day), a date-time itself."""
    if text in (None, ""):
        return None
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return dt.datetime.combine(day(text, name), dt.time.max, tzinfo=_zone(zone))
    return moment(text, name, zone)


def since(text: str | None, zone: str | None = None, name: str = "from") -> dt.datetime | None:
    """A lower bound: a date means its first moment, a date-time itself."""
    return moment(text, name, zone)


def until(text: str | None, zone: str | None = None, name: str = "to") -> dt.datetime | None:
    """An exclusive upper bound: a date means the end of that day (``to=2026-11-24`` includes the
    24th, as a 截止日期 does), a date-time itself."""
    if text not in (None, "") and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        return dt.datetime.combine(day(text.strip(), name) + dt.timedelta(days=1), dt.time.min, tzinfo=_zone(zone))
    return moment(text, name, zone)


def tolerance(text: str | float | None, name: str = "tolerance_m") -> float | None:
    """A tolerance in metres, 0 to 100; None when not given."""
    if text in (None, ""):
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InvalidInput("{name} must be a number of metres, not {text!r}", name=name, text=text) from None
    if not 0 <= value <= 100:
        raise InvalidInput("{name} must be between 0 and 100 metres", name=name)
    return value


def level(text: str | None, levels: tuple[str, ...]) -> str | None:
    """A level name among *levels* (the configured ones), or None when not given."""
    if text in (None, ""):
        return None
    if text not in levels:
        raise InvalidInput("unknown level {text!r}; levels are {levels}", text=text, levels=", ".join(levels))
    return text


#: What a grid code may look like (the database checks the same).
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def code(text: str | None, name: str = "grid code") -> str:
    """A well-formed grid code (whether it names a grid is for the database to say)."""
    if not isinstance(text, str) or not CODE_PATTERN.match(text):
        raise InvalidInput(
            "{name} {text!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            name=name,
            text=text,
        )
    return text


def position(text: str | None) -> tuple[float, float]:
    """Two numbers as typed: ``115.26,37.76`` or ``115.26 37.76`` (also a full-width comma), finite.

    Returned in the order typed; :func:`lon_lat` decides which is which.
    """
    match = _PAIR.match(text or "")
    if not match:
        raise InvalidInput("a position is two numbers, lon,lat (e.g. 115.26,37.76), not {text!r}", text=text)
    first, second = float(match.group(1)), float(match.group(2))
    if not (math.isfinite(first) and math.isfinite(second)):
        raise InvalidInput("a position must be finite numbers")
    return first, second


def lon_lat(first: float, second: float) -> tuple[float, float, bool]:
    """(lon, lat, swapped) for a pair typed as lon,lat, recognising lat,lon by range alone.

    Only a pair that cannot be lon,lat (the second number beyond ±90) is read the other way
    round here; a pair valid both ways is left to the territory check of the caller
    (:data:`geogrid.incidents.assign.SWAPPED_SQL`).
    """
    if abs(first) <= 180 and abs(second) <= 90:
        return first, second, False
    if abs(second) <= 180 and abs(first) <= 90:
        return second, first, True
    raise InvalidInput(
        "coordinates out of range: lon must be -180..180 and lat -90..90, not {first}, {second}",
        first=first,
        second=second,
    )
