"""Basemaps: what the map pages draw under the grids, configured in one place.

The list lives in ``$GEOGRID_HOME/basemaps.json`` and is written by ``geogrid basemap
...`` (add, tianditu, remove, default, list); the pages read it on every render, so a
change shows on the next page load without a restart. A basemap is one of:

- an XYZ or WMTS tile template (``{z}/{x}/{y}``, ``{-y}`` for TMS, ``{s}`` for
  subdomains; WMTS ``{TileMatrix}``, ``{TileRow}``, ``{TileCol}`` are accepted), drawn
  straight by the browser: an intranet tile server, OpenStreetMap, Amap;
- Tianditu (天地图): vector + annotation and imagery + annotation, the Web Mercator
  ``_w`` layers, with the key (``tk``) kept in the file (never in the repository) or
  in ``GEOGRID_TIANDITU_KEY``. CGCS2000 matches WGS84 for display: no shift;
- an MBTiles file (raster PNG/JPEG/WebP) that geogrid serves itself at
  ``/basemap/<name>/{z}/{x}/{y}``, for a center without internet.

A basemap in GCJ-02 (``datum="gcj02"``, e.g. Amap) is drawn with a shifted
projection on the page (see :mod:`geogrid.gcj02`): the data stays WGS84.

The older single ``GEOGRID_BASEMAP`` setting (a template or a z/x/y folder) still
works and shows as the basemap ``env``.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import re
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from geogrid.config import Settings
from geogrid.errors import ConfigError, InvalidInput, NotFound

FILE_NAME = "basemaps.json"
#: Where geogrid serves a tile of the basemap *name* (MBTiles, or a z/x/y folder).
LOCAL_PREFIX = "/basemap/"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
DATUMS = ("wgs84", "gcj02")
_WMTS = {"{TileMatrix}": "{z}", "{TileRow}": "{y}", "{TileCol}": "{x}"}
_RASTER = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}

#: Tianditu's Web Mercator layers: (base, annotation) per map. STANDARDS.md.
TIANDITU_URL = ("https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
                "&TILECOL={{x}}&tk={{tk}}")  # fmt: skip
TIANDITU = {"tianditu-vec": ("天地图 矢量", ("vec", "cva")), "tianditu-img": ("天地图 影像", ("img", "cia"))}
TIANDITU_ATTRIBUTION = "© 天地图 国家地理信息公共服务平台"


@dataclasses.dataclass(frozen=True)
class Basemap:
    """One background the pages can show."""

    name: str
    title: str
    #: Tile URL templates drawn bottom first (a map and its annotation); empty for a file.
    urls: tuple[str, ...] = ()
    #: ``wgs84`` (also CGCS2000) or ``gcj02`` (drawn with a shifted projection).
    datum: str = "wgs84"
    subdomains: str = ""
    attribution: str = ""
    #: The deepest zoom with tiles; the pages zoom further by enlarging them.
    max_zoom: int = 18
    #: An MBTiles file geogrid serves (absolute path), or a z/x/y.png folder.
    file: str | None = None
    #: The key the templates' ``{tk}`` takes (Tianditu).
    key_name: str | None = None

    def tile_urls(self, keys: dict[str, str]) -> list[str]:
        """The templates the page's tile layers use (keys filled in; geogrid's own for a file)."""
        if self.file is not None:
            return [f"{LOCAL_PREFIX}{self.name}/{{z}}/{{x}}/{{y}}"]
        key = keys.get(self.key_name or "", "")
        return [url.replace("{tk}", key) for url in self.urls]

    def origins(self) -> list[str]:
        """Where the browser fetches this basemap's tiles from (for the Content-Security-Policy)."""
        found = []
        for url in self.urls:
            parts = urlsplit(url.replace("{s}", "SUB"))
            first, _, rest = parts.netloc.partition(".")
            host = "*." + rest if "SUB" in first else parts.netloc  # CSP allows a wildcard first label only
            found.append(f"{parts.scheme}://{host}")
        return found


@dataclasses.dataclass
class Config:
    """The basemaps file: the layers, the one pages open with, and keys."""

    basemaps: list[Basemap] = dataclasses.field(default_factory=list)
    default: str | None = None
    keys: dict[str, str] = dataclasses.field(default_factory=dict)

    def find(self, name: str) -> Basemap:
        """The basemap called *name*; NotFound naming the configured ones otherwise."""
        for basemap in self.basemaps:
            if basemap.name == name:
                return basemap
        raise NotFound("no basemap {name!r}; configured: {known}", name=name,
                       known=", ".join(b.name for b in self.basemaps) or "none")  # fmt: skip


def path(settings: Settings) -> Path:
    """The basemaps file of this installation."""
    return settings.home / FILE_NAME


_cache: dict[Path, tuple[float, Config]] = {}


def load(settings: Settings) -> Config:
    """The configured basemaps (the file, then ``GEOGRID_BASEMAP`` and ``GEOGRID_TIANDITU_KEY``)."""
    config = _read(path(settings))
    if settings.basemap != "none":
        local = "://" not in settings.basemap
        config.basemaps.append(Basemap("env", "底图", () if local else (settings.basemap,),
                                       subdomains="abc" if "{s}" in settings.basemap else "",
                                       attribution=settings.basemap_attribution,
                                       file=settings.basemap if local else None))  # fmt: skip
        config.default = config.default or "env"
    key = os.environ.get("GEOGRID_TIANDITU_KEY")
    if key:
        config.keys["tianditu"] = key
    return config


def _read(file: Path) -> Config:
    try:
        mtime = file.stat().st_mtime
    except FileNotFoundError:
        return Config()
    cached = _cache.get(file)
    if cached is None or cached[0] != mtime:
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
            config = Config([Basemap(**{**item, "urls": tuple(item.get("urls", ()))}) for item in raw["basemaps"]],
                            raw.get("default"), dict(raw.get("keys", {})))  # fmt: skip
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ConfigError("{file}: not a basemaps file ({exc}); fix or remove it", file=file, exc=exc) from exc
        _cache[file] = (mtime, config)
    cached = _cache[file][1]
    return Config(list(cached.basemaps), cached.default, dict(cached.keys))


def save(settings: Settings, config: Config) -> None:
    """Write the basemaps file (only ``env`` is left out: it comes from the environment), readable by its owner."""
    file = path(settings)
    file.parent.mkdir(parents=True, exist_ok=True)
    body = {"default": config.default, "keys": config.keys,
            "basemaps": [_plain(b) for b in config.basemaps if b.name != "env"]}  # fmt: skip
    handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=".basemaps.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(body, out, ensure_ascii=False, indent=1)
    os.chmod(temporary, 0o600)
    os.replace(temporary, file)


def _plain(basemap: Basemap) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(basemap).items()}


# -- changing the list ----------------------------------------------------------------


def add_template(settings: Settings, name: str, url: str, *, title: str | None = None, datum: str = "wgs84",
                 subdomains: str = "", attribution: str = "", annotation: str | None = None,
                 max_zoom: int = 18) -> Basemap:  # fmt: skip
    """Add (or replace) an XYZ/WMTS template basemap; *annotation* is a second template drawn on top."""
    urls = tuple(_template(u) for u in (url, annotation) if u)
    if datum not in DATUMS:
        raise InvalidInput("datum must be wgs84 or gcj02, not {datum!r}", datum=datum)
    if any("{s}" in u for u in urls) and not subdomains:
        raise InvalidInput("the template has {{s}}: give the subdomains (e.g. --subdomains abc)")
    return _put(settings, Basemap(_name(name), title or name, urls, datum, subdomains, attribution,
                                  _zoom(max_zoom)))  # fmt: skip


def add_tianditu(settings: Settings, key: str) -> list[Basemap]:
    """Add Tianditu's vector and imagery maps (each with its annotation); *key* is the ``tk``."""
    if not re.fullmatch(r"[0-9a-fA-F]{32}", key or ""):
        raise InvalidInput("a Tianditu key (tk) is 32 hexadecimal characters; get one at console.tianditu.gov.cn")
    config = load(settings)
    config.keys["tianditu"] = key
    save(settings, config)
    made = []
    for name, (title, layers) in TIANDITU.items():
        urls = tuple(TIANDITU_URL.format(layer=layer) for layer in layers)
        made.append(_put(settings, Basemap(name, title, urls, "wgs84", "01234567", TIANDITU_ATTRIBUTION, 18,
                                           key_name="tianditu")))  # fmt: skip
    return made


def add_mbtiles(settings: Settings, file: Path, *, name: str | None = None, title: str | None = None) -> Basemap:
    """Add a raster MBTiles file that geogrid serves itself (the file stays where it is)."""
    file = Path(file).absolute()
    metadata = mbtiles_metadata(file)
    name = _name(name or re.sub(r"[^a-z0-9_-]+", "-", file.stem.lower()).strip("-_") or "tiles")
    max_zoom = int(metadata.get("maxzoom") or _max_zoom(file))
    return _put(settings, Basemap(name, title or metadata.get("name") or name, (), "wgs84", "",
                                  metadata.get("attribution", ""), _zoom(max_zoom), str(file)))  # fmt: skip


def remove(settings: Settings, name: str) -> None:
    """Take *name* off the list (a file basemap's file is left alone)."""
    config = load(settings)
    config.find(name)
    if name == "env":
        raise InvalidInput("the basemap 'env' comes from GEOGRID_BASEMAP: unset it instead")
    config.basemaps = [b for b in config.basemaps if b.name != name]
    if config.default == name:
        config.default = None
    save(settings, config)


def set_default(settings: Settings, name: str) -> None:
    """The basemap pages open with (``none`` for none); a user's own pick in the page wins."""
    config = load(settings)
    if name != "none":
        config.find(name)
    config.default = None if name == "none" else name
    save(settings, config)


def _put(settings: Settings, basemap: Basemap) -> Basemap:
    config = load(settings)
    config.basemaps = [b for b in config.basemaps if b.name != basemap.name] + [basemap]
    config.default = config.default or basemap.name
    save(settings, config)
    return basemap


def _name(name: str) -> str:
    if not _NAME.fullmatch(name or "") or name in ("none", "env"):
        raise InvalidInput("a basemap name is 1-32 lower-case letters, digits, - or _ (not 'none' or 'env'), "
                           "not {name!r}", name=name)  # fmt: skip
    return name


def _zoom(zoom: int) -> int:
    if not 0 <= zoom <= 22:
        raise InvalidInput("max zoom must be between 0 and 22, not {zoom}", zoom=zoom)
    return zoom


def _template(url: str) -> str:
    for wmts, xyz in _WMTS.items():
        url = url.replace(wmts, xyz)
    if not url.startswith(("http://", "https://")):
        raise InvalidInput("a tile template must be an http(s) URL, not {url!r}", url=url)
    if "{z}" not in url or "{x}" not in url or ("{y}" not in url and "{-y}" not in url):
        raise InvalidInput("a tile template needs {{z}}, {{x}} and {{y}} (or WMTS {{TileMatrix}}, {{TileCol}}, "
                           "{{TileRow}}): {url}", url=url)  # fmt: skip
    return url


# -- MBTiles ----------------------------------------------------------------------------


def _open(file: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True, check_same_thread=False)


def mbtiles_metadata(file: Path) -> dict[str, str]:
    """The metadata of a raster MBTiles file; InvalidInput when it is not one geogrid can serve."""
    if not file.is_file():
        raise InvalidInput("no file {file}", file=file)
    try:
        with _open(file) as db:
            metadata = dict(db.execute("SELECT name, value FROM metadata").fetchall())
            db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise InvalidInput("{file} is not an MBTiles file ({exc})", file=file, exc=exc) from exc
    fmt = str(metadata.get("format", "png")).lower()
    if fmt not in _RASTER:
        raise InvalidInput("{file} holds {fmt} tiles; geogrid serves raster tiles (png, jpg, webp) only",
                           file=file, fmt=fmt)  # fmt: skip
    return metadata


def _max_zoom(file: Path) -> int:
    with _open(file) as db:
        return int(db.execute("SELECT coalesce(max(zoom_level), 18) FROM tiles").fetchone()[0])


def read_tile(basemap: Basemap, z: int, x: int, y: int) -> tuple[bytes, str] | None:
    """The tile z/x/y (XYZ numbering) of a file basemap, with its content type; None when absent."""
    if basemap.file is None or not 0 <= z <= 30 or not (0 <= x < 2**z and 0 <= y < 2**z):
        return None
    file = Path(basemap.file)
    if file.is_dir():  # a z/x/y.png folder (GEOGRID_BASEMAP)
        tile = file / str(z) / str(x) / f"{y}.png"
        return (tile.read_bytes(), "image/png") if tile.is_file() else None
    try:
        with _open(file) as db:
            fmt = db.execute("SELECT value FROM metadata WHERE name = 'format'").fetchone()
            row = db.execute("SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                             (z, x, 2**z - 1 - y)).fetchone()  # fmt: skip
    except sqlite3.DatabaseError as exc:
        raise ConfigError("basemap {name}: cannot read {file} ({exc})", name=basemap.name, file=file, exc=exc) from exc
    if row is None:
        return None
    return bytes(row[0]), _RASTER.get(str(fmt[0] if fmt else "png").lower(), "image/png")


@functools.cache
def empty_tile() -> bytes:
    """A transparent 256 x 256 PNG: what a file basemap shows where it has no tile."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGBA", (256, 256), (0, 0, 0, 0)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def write_mbtiles(file: Path, tiles, metadata: dict[str, str]) -> int:
    """Write *tiles* ((z, x, y, png bytes), XYZ numbering) as a new MBTiles file; returns how many."""
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    count = 0
    with sqlite3.connect(partial) as db:
        db.executescript("""
            CREATE TABLE metadata (name text, value text);
            CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);
            CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
        """)
        db.executemany("INSERT INTO metadata VALUES (?, ?)", [(k, str(v)) for k, v in metadata.items()])
        for z, x, y, data in tiles:
            db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, 2**z - 1 - y, sqlite3.Binary(data)))
            count += 1
    os.replace(partial, file)
    return count


# -- what a page gets ---------------------------------------------------------------------


def page_config(settings: Settings) -> dict:
    """The basemaps for the page script: each with its templates, and the one to open with."""
    config = load(settings)
    layers = []
    for b in config.basemaps:
        if b.key_name and not config.keys.get(b.key_name):
            continue  # a Tianditu layer without its key would only draw errors
        layers.append({"name": b.name, "title": b.title, "urls": b.tile_urls(config.keys), "datum": b.datum,
                       "subdomains": b.subdomains, "attribution": b.attribution,
                       "maxNativeZoom": b.max_zoom})  # fmt: skip
    default = config.default if any(layer["name"] == config.default for layer in layers) else None
    return {"layers": layers, "default": default or "none"}


def origins(settings: Settings) -> list[str]:
    """Every host a page's basemap tiles come from."""
    found: list[str] = []
    for basemap in load(settings).basemaps:
        for origin in basemap.origins():
            if origin not in found:
                found.append(origin)
    return found
