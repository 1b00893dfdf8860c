"""The map pages (planner, command center, supervisor), vector tiles, and the files they load.

Pages are Folium maps (built in :mod:`geogrid.layers`) inside a page with the
controls; ``static/geogrid/maps.js`` makes them interactive through the JSON API.
Everything a page loads comes from this app: Leaflet and its plugins from the assets
folder installed at set-up, and the basemaps geogrid serves itself (MBTiles files, tile folders).
"""

from __future__ import annotations

import re
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, g, render_template, request, send_from_directory
from flask_babel import gettext as _

from geogrid import accounts, basemaps, inputs
from geogrid.api import i18n
from geogrid.api.auth import ANY_ROLE, PUBLIC, access, csrf_token
from geogrid.api.context import db, principal, state
from geogrid.api.incidents import HANDLERS, list_filters
from geogrid.api.labels import category_name, category_picker, label, labels
from geogrid.api.tilecache import TileCache
from geogrid.errors import InvalidInput, NotFound
from geogrid.grids import hierarchy
from geogrid.grids.queries import check_tile, grid_tile, grids_geojson, level_summary
from geogrid.incidents.queries import count_incidents, incident_tile
from geogrid.incidents.taxonomy import categories
from geogrid.incidents.workflow import DEPARTMENTS, TRANSITIONS
from geogrid.layers import base
from geogrid.layers.coverage import EMBEDDED_WORKERS, FRACTION_BINS, coverage_map
from geogrid.layers.grids import min_zoom, planner_map
from geogrid.layers.incidents import incidents_map
from geogrid.patrols.compute import day_moment, prepare_day
from geogrid.patrols.queries import (
    coverage_cells_geojson,
    coverage_gaps,
    coverage_stamp,
    coverage_tile,
    latest_patrol_day,
    leaf_count,
    missed_cells,
    track_counts,
    tracks_geojson,
)
from geogrid.store.models import SOURCES

bp = Blueprint("maps", __name__)

#: Coverage tiles already made, per serving process (geogrid.api.tilecache).
COVERAGE_TILES = TileCache()
EDITORS = ("admin", "planner")
#: Missed cells listed on the coverage page (worst first; the count says how many there are in all).
MISSED_LISTED = 200
INCIDENT_READERS = ("admin", "operator", "supervisor")
COVERAGE_READERS = ("admin", "supervisor")
_TILE_TYPE = "application/vnd.mapbox-vector-tile"


@bp.get("/map/grids")
@access(*ANY_ROLE)
def grids_page():
    """Planner map: grids by level with labels, past boundaries, topology problems, editing."""
    settings = state().settings
    at_text = request.args.get("at") or None
    at = inputs.at(at_text, settings.timezone)
    at_text = at.date().isoformat() if at else None  # normalised: it goes into tile URLs
    with db() as conn:
        scope = accounts.visible_grid_codes(conn, principal())
        summary = _top_down(level_summary(conn, at=at, codes=scope), settings.levels)  # township first
        features = {
            row["level"]: grids_geojson(conn, level=row["level"], at=at, codes=scope, srid=settings.metric_srid)
            for row in summary
            if row["n"] <= settings.tile_threshold
        }
        tops = sorted(
            {f["properties"]["code"] for fc in features.values() for f in fc["features"]
             if not f["properties"]["parent_code"]}
        )  # fmt: skip
        first = hierarchy.first_boundaries(conn)
    notice = None
    if first is None:
        notice = _("There are no grid boundaries yet: import a boundary file or generate cells.")
    elif at is not None and at < first:
        since = first.astimezone(ZoneInfo(settings.timezone)).date().isoformat()
        notice = _("No boundaries on %(day)s: the first are valid from %(first)s.", day=at_text, first=since)
    can_edit = principal().role in EDITORS and at is None
    m, config = planner_map(settings, summary, features, at=at_text, can_edit=can_edit)
    config["tops"] = tops
    return map_page("map_grids.html", m, config, title=_("Planner map"), summary=summary, at=at_text, day_notice=notice,
                    all_levels=settings.levels)  # fmt: skip


@bp.get("/map/incidents")
@access(*INCIDENT_READERS)
def incidents_page():
    """Command-center map: incidents clustered by status, overdue marked, filters, search, details."""
    settings = state().settings
    with db() as conn:
        summary = level_summary(conn)
        top = next((row for row in _top_down(summary, settings.levels)), None)
        outline = None
        if top is not None and top["n"] <= settings.tile_threshold:
            outline = grids_geojson(conn, level=top["level"], srid=settings.metric_srid)
        tiled = count_incidents(conn) > settings.tile_threshold
    cats = [{"code": c.code, "name": category_name(c)} for c in categories(settings.categories_file).values()]
    picker = category_picker()
    statuses = [{"code": s, "name": label("status", s)} for s in TRANSITIONS]
    m, config = incidents_map(settings, base.extent(summary), categories=cats, statuses=statuses, grids_fc=outline,
                              tiled=tiled)  # fmt: skip
    sources = [{"code": code, "name": label("source", code)} for code in SOURCES]
    can_handle = principal().role in HANDLERS
    config = {**config, "can_handle": can_handle, "can_supervise": principal().role in (*HANDLERS, "supervisor"),
              "departments": DEPARTMENTS}  # fmt: skip
    return map_page("map_incidents.html", m, config, title=_("Command center"), classes=picker, statuses=statuses,
                 sources=sources, can_handle=can_handle)  # fmt: skip


@bp.get("/map/coverage")
@access(*COVERAGE_READERS)
def coverage_page():
    """Supervisor map: cells by coverage and by rule for a day, tracks per worker, gaps, missed cells."""
    settings = state().settings
    grid = request.args.get("grid") or None
    empty = {"type": "FeatureCollection", "features": []}
    with db() as conn:
        # ``day=`` is read as ``date=`` (an address written by hand, or by another system).
        asked = request.args.get("date") or request.args.get("day")
        day = inputs.optional_day(asked, "date") or latest_patrol_day(conn, settings)
        if grid:
            hierarchy.require(conn, grid, day_moment(settings, day))
        try:  # the one place this request brings the day up to date
            found = prepare_day(conn, settings, day)
            notice = found.text(i18n.gettext) if found is not None else None
        except InvalidInput as err:  # a day to come: said on the page, not as an error page
            notice = i18n.translate_error(err.template, err.extra)
        n_cells = leaf_count(conn, grid=grid, at=day_moment(settings, day))
        small = n_cells <= settings.tile_threshold
        if notice is None:
            cells = coverage_cells_geojson(conn, settings, day, grid=grid) if small else None
            gaps = coverage_gaps(conn, settings, day, grid=grid) if small else None
            workers = track_counts(conn, settings, day, grid=grid)
            # Many workers: the page lists them and fetches a worker's tracks when they are shown.
            tracks = tracks_geojson(conn, settings, day, grid=grid) if len(workers) <= EMBEDDED_WORKERS else None
            # The worst 200 on the page (a grid narrows them down): enough to act on, light to open.
            missed, n_missed = missed_cells(conn, settings, day, grid=grid, limit=MISSED_LISTED)
        else:
            small, cells, gaps, tracks, workers, missed, n_missed = True, empty, empty, empty, [], [], 0
        summary = level_summary(conn)
    tiles_query = urlencode({"date": day.isoformat(), **({"grid": grid} if grid else {})})
    width = next((r["width_m"] for r in _top_down(summary, settings.levels)[::-1]), None)
    extent = base.extent(summary)
    zoom = min_zoom(width, (extent[1] + extent[3]) / 2) if extent and not small else 0
    m, config = coverage_map(settings, extent, cells=cells, tracks=tracks, workers=workers, gaps=gaps,
                             day=day.isoformat(),
                             tiles_query=tiles_query, tiles_min_zoom=zoom)  # fmt: skip
    counts = {"cells": n_cells, "missed": n_missed, "tracks": sum(w["tracks"] for w in workers),
              "workers": len(config["workers"]),
              "gaps": len(gaps["features"]) if gaps is not None else None}  # fmt: skip
    return map_page("map_coverage.html", m, config, title=_("Patrol coverage"), day=day.isoformat(), grid=grid,
                 missed=missed, counts=counts, day_notice=notice)  # fmt: skip


@bp.get("/tiles/coverage/<int:z>/<int:x>/<int:y>.pbf")
@access(*COVERAGE_READERS)
def coverage_tiles(z: int, x: int, y: int):
    """Leaf cells with a day's coverage as a Mapbox vector tile (layer ``coverage``); ``size=512``: the tile
    of a map at zoom *z* drawn with 512-pixel tiles."""
    z = tile_zoom(z)
    check_tile(z, x, y)
    day = inputs.day(request.args.get("date"))
    grid, datum = request.args.get("grid") or None, _datum()
    with db() as conn:
        key = (day, z, x, y, grid, datum, coverage_stamp(conn, day))
        bins = [bound for bound, _ in FRACTION_BINS]
        tile = COVERAGE_TILES.get(key, lambda: coverage_tile(conn, state().settings, day, z, x, y, grid=grid,
                                                             bins=bins, datum=datum))  # fmt: skip
    return tile, 200, {"Content-Type": _TILE_TYPE, "Cache-Control": "private, max-age=60"}


@bp.get("/tiles/grids/<int:z>/<int:x>/<int:y>.pbf")
@access(*ANY_ROLE)
def grid_tiles(z: int, x: int, y: int):
    """Grids as a Mapbox vector tile (layer ``grids``), for one level and date."""
    level = inputs.level(request.args.get("level"), state().settings.levels)
    with db() as conn:
        scope = accounts.visible_grid_codes(conn, principal())
        at = inputs.at(request.args.get("at"), state().settings.timezone)
        tile = grid_tile(conn, z, x, y, level=level, at=at, codes=scope, datum=_datum())
    return tile, 200, {"Content-Type": _TILE_TYPE, "Cache-Control": "private, max-age=60"}


@bp.get("/tiles/incidents/<int:z>/<int:x>/<int:y>.pbf")
@access(*INCIDENT_READERS)
def incident_tiles(z: int, x: int, y: int):
    """Incidents matching the list filters (status, category, grid, from, to, overdue) as a vector tile."""
    check_tile(z, x, y)
    with db() as conn:
        tile = incident_tile(conn, z, x, y, datum=_datum(), **list_filters(request.args))
    return tile, 200, {"Content-Type": _TILE_TYPE, "Cache-Control": "private, max-age=30"}


def tile_zoom(z: int) -> int:
    """The zoom of the standard (256-pixel) tile a request is for: a 512-pixel tile of a map at zoom *z* is the
    tile of zoom *z* - 1 (``?size=512``)."""
    size = request.args.get("size") or "256"
    if size not in ("256", "512"):
        raise InvalidInput("size is 256 or 512, not {size!r}", size=size)
    return z - 1 if size == "512" and z > 0 else z


def _datum() -> str:
    """The datum of the basemap a tile is drawn on: ``wgs84`` (default) or ``gcj02`` (cut shifted)."""
    datum = request.args.get("datum") or "wgs84"
    if datum not in basemaps.DATUMS:
        raise InvalidInput("datum must be wgs84 or gcj02, not {datum!r}", datum=datum)
    return datum


@bp.get("/vendor/<path:name>")
@access(PUBLIC)
def vendor(name: str):
    """Leaflet and its plugins, from the assets folder installed at set-up (public libraries)."""
    folder = state().settings.assets_dir
    if not folder.is_dir():
        abort(404, description=f"map assets are not installed in {folder}: run `make setup`")
    if not re.fullmatch(r"[A-Za-z0-9@._/-]+\.(js|css|png|svg|gif)", name) or ".." in name:
        abort(404)
    return send_from_directory(folder, name, max_age=3600)


@bp.get("/basemap/<name>/<int:z>/<int:x>/<int:y>")
@access(*ANY_ROLE)
def basemap(name: str, z: int, x: int, y: int):
    """A tile of a basemap geogrid serves itself: an MBTiles file or a tile folder (``geogrid basemap add``)."""
    try:
        found = basemaps.read_tile(basemaps.load(state().settings).find(name), z, x, y)
    except NotFound:
        abort(404)
    # Where the file has no tile (beyond its area or zooms), an empty one: nothing to draw is not an error.
    data, mimetype = found if found is not None else (basemaps.empty_tile(), "image/png")
    return data, 200, {"Content-Type": mimetype, "Cache-Control": "private, max-age=86400"}


def map_page(template: str, m, config: dict, **context):
    """A map page: the Folium map *m* rendered into *template*, with the page script's *config* and what every
    page script needs (CSRF token, role, words, labels, time zone, language, basemaps)."""
    config = {**config, "csrf": csrf_token(), "role": principal().role, "messages": i18n.js_messages(),
              "labels": labels(), "timezone": state().settings.timezone, "language": i18n.current(),
              "basemaps": basemaps.page_config(state().settings)}  # fmt: skip
    rendered = base.render(m, config, nonce=g.csp_nonce)
    return render_template(template, map=rendered, user=principal(), csrf=config["csrf"], **context)


def _top_down(summary: list[dict], levels: tuple[str, ...]) -> list[dict]:
    order = {name: n for n, name in enumerate(levels)}
    return sorted(summary, key=lambda row: order.get(row["level"], len(order)))
