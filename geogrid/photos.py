"""Photos taken on site: checked, read (size, type, EXIF position and time), stored, listed and served.

A photo belongs to a case (an incident) or to a 补签 request. It is kept as sent, so its
EXIF stays as evidence, with a JPEG copy of at most 320 px for lists. What is accepted:
JPEG, PNG or WebP, recognised by their first bytes (not by the name or the header the
client sends), at most ``GEOGRID_PHOTO_MAX_BYTES``, that Pillow can decode, under
Pillow's decompression-bomb limit, and at most ``GEOGRID_PHOTOS_PER_ITEM`` per case or
request. The EXIF position is taken as WGS84, as a phone's GNSS writes it; ``(0, 0)``
and out-of-range values count as no position.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import warnings
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.errors import Conflict, InvalidInput, NotFound, TooLarge

#: The first bytes of each accepted type.
_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
THUMB_PX = 320
#: EXIF tags: the GPS and Exif sub-directories, and the fields read from them.
_GPS_IFD, _EXIF_IFD = 0x8825, 0x8769
_LAT_REF, _LAT, _LON_REF, _LON = 1, 2, 3, 4
_TAKEN, _OFFSET = 36867, 36881  # DateTimeOriginal, OffsetTimeOriginal


@dataclasses.dataclass(frozen=True)
class PhotoFile:
    """What a checked photo file is."""

    content_type: str
    width: int
    height: int
    thumb: bytes
    lon: float | None = None
    lat: float | None = None
    taken_at: dt.datetime | None = None


def content_type(data: bytes) -> str | None:
    """The image type *data* starts as, or None."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def read_photo(data: bytes, settings: Settings) -> PhotoFile:
    """Check *data* as a photo and read what it carries; a clear error for anything else."""
    if len(data) > settings.photo_max_bytes:
        raise TooLarge("the photo is {size} bytes; the limit is {limit}", size=len(data),
                       limit=settings.photo_max_bytes)  # fmt: skip
    if not data:
        raise InvalidInput("the photo is empty; send the image file as the body")
    kind = content_type(data)
    if kind is None:
        raise InvalidInput("not a photo: send a JPEG, PNG or WebP image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()  # the whole file, without decoding it
            image = Image.open(io.BytesIO(data))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput("the photo has too many pixels to be a photo") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput("the photo cannot be read: {reason}", reason=str(exc) or type(exc).__name__) from None
    with image:
        exif = image.getexif()
        lon, lat = _position(exif.get_ifd(_GPS_IFD))
        taken = _taken_at(exif.get_ifd(_EXIF_IFD), settings.timezone)
        width, height = image.size
        small = ImageOps.exif_transpose(image).convert("RGB")
        small.thumbnail((THUMB_PX, THUMB_PX))
        out = io.BytesIO()
        small.save(out, "JPEG", quality=75)
    return PhotoFile(kind, width, height, out.getvalue(), lon, lat, taken)


def _degrees(value) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals."""
    try:
        d, m, s = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return d + m / 60 + s / 3600


def _position(gps) -> tuple[float | None, float | None]:
    lat, lon = _degrees(gps.get(_LAT)), _degrees(gps.get(_LON))
    if lat is None or lon is None:
        return None, None
    if str(gps.get(_LAT_REF, "N")).strip().upper().startswith("S"):
        lat = -lat
    if str(gps.get(_LON_REF, "E")).strip().upper().startswith("W"):
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (abs(lat) < 1e-9 and abs(lon) < 1e-9):
        return None, None
    return lon, lat


def _taken_at(exif, timezone: str) -> dt.datetime | None:
    """When the photo was taken: its offset when it says one, else the center's time zone."""
    raw = str(exif.get(_TAKEN) or "").strip().strip("\x00")
    try:
        moment = dt.datetime.strptime(raw, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = str(exif.get(_OFFSET) or "").strip().strip("\x00")
    try:
        zone = dt.datetime.strptime(offset, "%z").tzinfo if offset else None
    except ValueError:
        zone = None
    return moment.replace(tzinfo=zone or ZoneInfo(timezone))


def attach(conn: Connection, settings: Settings, data: bytes, *, actor: str, incident_id: int | None = None,
           repair_id: int | None = None, note: str = "") -> dict:  # fmt: skip
    """Store *data* as a photo of a case or of a 补签 request; what was stored, with the distance from the
    case's location to where the photo says it was taken."""
    if (incident_id is None) == (repair_id is None):
        raise ValueError("a photo belongs to a case or to a repair request")
    owner, key = ("incidents", incident_id) if incident_id is not None else ("patrol_repairs", repair_id)
    # Locks the case or request: two uploads at once cannot both pass the count.
    found = conn.execute(sa.text(f"SELECT 1 FROM {owner} WHERE id = :id FOR UPDATE"), {"id": key}).first()
    if found is None and incident_id is not None:
        raise NotFound("no case {id}", id=key)
    if found is None:
        raise NotFound("no repair request {id}", id=key)
    column = "incident_id" if incident_id is not None else "repair_id"
    count = conn.execute(sa.text(f"SELECT count(*) FROM photos WHERE {column} = :id"), {"id": key}).scalar_one()
    if count >= settings.photos_per_item:
        raise Conflict("it has {count} photos already; the limit is {limit}", count=count,
                       limit=settings.photos_per_item)  # fmt: skip
    photo = read_photo(data, settings)
    row = conn.execute(
        sa.text(
            f"""
            INSERT INTO photos ({column}, content_type, size, sha256, width, height, data, thumb, taken_at, geom,
                                note, uploaded_by)
            VALUES (:id, :type, :size, :sha, :w, :h, :data, :thumb, :taken,
                    CASE WHEN CAST(:lon AS float8) IS NOT NULL
                         THEN ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END, :note, :actor)
            RETURNING id
            """
        ),
        {"id": key, "type": photo.content_type, "size": len(data), "sha": hashlib.sha256(data).hexdigest(),
         "w": photo.width, "h": photo.height, "data": data, "thumb": photo.thumb, "taken": photo.taken_at,
         "lon": photo.lon, "lat": photo.lat, "note": note.strip(), "actor": actor},
    ).scalar_one()  # fmt: skip
    return photos_of(conn, photo_id=row)[0]


def photos_of(conn: Connection, *, incident_id: int | None = None, repair_id: int | None = None,
              photo_id: int | None = None) -> list[dict]:  # fmt: skip
    """The photos of a case, of a request, or one photo, oldest first (without their bytes).

    ``distance_m`` is how far the photo's EXIF position lies from the case's location (for
    a case's photos), None when the photo has no position.
    """
    rows = conn.execute(
        sa.text(
            """
            SELECT p.id, p.incident_id, p.repair_id, p.content_type, p.size, p.width, p.height, p.taken_at,
                   ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat, p.note, p.uploaded_by, p.uploaded_at,
                   round(ST_Distance(p.geom::geography, i.location::geography)::numeric, 1)::float8 AS distance_m
              FROM photos p LEFT JOIN incidents i ON i.id = p.incident_id
             WHERE (CAST(:incident AS bigint) IS NULL OR p.incident_id = :incident)
               AND (CAST(:repair AS bigint) IS NULL OR p.repair_id = :repair)
               AND (CAST(:photo AS bigint) IS NULL OR p.id = :photo)
             ORDER BY p.uploaded_at, p.id
            """
        ),
        {"incident": incident_id, "repair": repair_id, "photo": photo_id},
    ).mappings()
    return [{**r, "taken_at": _iso(r["taken_at"]), "uploaded_at": _iso(r["uploaded_at"]),
             "url": f"/api/photos/{r['id']}"} for r in rows]  # fmt: skip


def photo_file(conn: Connection, photo_id: int, *, thumb: bool = False) -> tuple[bytes, str, dict]:
    """A photo's bytes (or its small copy), their type, and what it belongs to."""
    row = conn.execute(
        sa.text(f"SELECT {'thumb' if thumb else 'data'} AS body, content_type, incident_id, repair_id "
                "FROM photos WHERE id = :id"),
        {"id": photo_id},
    ).mappings().first()  # fmt: skip
    if row is None:
        raise NotFound("no photo {id}", id=photo_id)
    kind = "image/jpeg" if thumb else row["content_type"]
    return bytes(row["body"]), kind, {"incident_id": row["incident_id"], "repair_id": row["repair_id"]}


def _iso(value):
    return value.isoformat() if value is not None else None
