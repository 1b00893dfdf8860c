"""The demo township's own basemap: fields, water, settlements, houses and roads, as map tiles.

Made from the same seed as the township (:func:`geogrid.demo_township.place`), so the
villages' houses stand where the demo's households are and each settlement carries
the name of the village grid it lies in. Drawn with Pillow into PNG tiles (zooms 12 to
16, enlarged beyond) and written as an MBTiles file that geogrid serves itself
(``geogrid basemap``); ``geogrid demo`` makes it once and sets it as the default.
Everything follows from the seed: the same seed draws the same tiles, byte for byte.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import shapely
import sqlalchemy as sa
from PIL import Image, ImageDraw, ImageFont
from shapely import LineString, Point, Polygon, affinity
from sqlalchemy.engine import Connection

from geogrid import basemaps, demo_township
from geogrid.config import Settings

ZOOMS = range(13, 17)
#: Bumped when the drawing changes: an older file is drawn again.
DRAWING = "2"
WIDE_DEG = 0.04
NAME = "demo"
TITLE = "示范乡底图"
#: Noto Sans CJK from the OS packages (``make fonts``); without it the map has no names.
FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
_SCALE = 2  # drawn at twice the size, then reduced: smooth edges

_COLOURS = {
    "ground": "#e9eedb", "field": ("#dfe9c6", "#e9e5bd", "#d4e3b5", "#ecefd4", "#dbe6bf"), "ridge": "#cdd8b1",
    "water": "#a9cde8", "water_edge": "#86b3d8", "settlement": "#efe5d6", "house": "#d8c7b0",
    "house_edge": "#c2ad92", "casing": "#b9b2a6", "road": "#ffffff", "main_casing": "#d99a3e", "main": "#fbd27c",
    "label": "#4a4036",
}  # fmt: skip


@dataclasses.dataclass
class Ground:
    """What the basemap shows, in lon/lat (drawn fields, settlements, water, houses, roads, names)."""

    #: Where the tiles are drawn: up to zoom 15 (*wide*, ~3.5 km around the township, what
    #: a full-screen view of it shows), and at zoom 16 (*box*, 1.5 km around it).
    box: tuple[float, float, float, float]
    wide: tuple[float, float, float, float]
    fields: list[Polygon]
    water: list[Polygon]
    settlements: list[Polygon]
    houses: list[Polygon]
    #: (line, width in metres, kind): kind ``main``, ``village`` or ``street``.
    roads: list[tuple[LineString, float, str]]
    labels: list[tuple[float, float, str]]


def ground(seed: int, labels: list[tuple[float, float, str]] | None = None) -> Ground:
    """The demo's land for *seed*; *labels* (lon, lat, name) are the place names (else the settlements
    named from the demo's list)."""
    outline, homes, centres = demo_township.place(seed)
    rng = np.random.default_rng(seed + 1)
    x0, y0 = demo_township.CENTRE
    kx, ky = 1 / (111_320 * math.cos(math.radians(y0))), 1 / 110_574
    # Built in metres around the centre, turned into lon/lat at the end.
    to_lonlat = lambda g: affinity.affine_transform(g, [kx, 0, 0, ky, x0, y0])  # noqa: E731
    to_m = lambda g: affinity.affine_transform(g, [1 / kx, 0, 0, 1 / ky, -x0 / kx, -y0 / ky])  # noqa: E731
    # The land fills every tile of the widest zoom over the township and ~3.5 km around it.
    west, south, east, north = tiles_box(outline.buffer(WIDE_DEG).bounds, min(ZOOMS))
    minx, miny, maxx, maxy = to_m(shapely.box(west, south, east, north)).bounds
    centres_m = [((cx - x0) / kx, (cy - y0) / ky) for cx, cy in centres]
    homes_m = np.array([((hx - x0) / kx, (hy - y0) / ky) for hx, hy in homes])

    # Fields: long strips on a slightly turned grid, in a few crop colours.
    angle = float(rng.uniform(-12, 12))
    fields = []
    pivot = Point(0, 0)
    span = max(abs(minx), abs(maxx), abs(miny), abs(maxy)) * 1.3  # the turned grid still covers the corners
    for fx in np.arange(-span, span, 190.0):
        for fy in np.arange(-span, span, 75.0):
            strip = shapely.box(fx + 3, fy + 2, fx + 187, fy + 73)
            strip = affinity.rotate(strip, angle, origin=pivot)
            if strip.intersects(shapely.box(minx, miny, maxx, maxy)):
                fields.append(strip)
    # A river winding west to east, and ponds by some villages.
    xs = np.arange(minx - 200, maxx + 200, 60.0)
    phase = rng.uniform(0, 2 * math.pi, 2)
    base = float(np.mean([c[1] for c in centres_m]) + rng.uniform(-900, 900))  # through the township
    ys = base + 420 * np.sin(xs / 2300 + phase[0]) + 130 * np.sin(xs / 610 + phase[1])
    river = LineString(np.column_stack([xs, ys]))
    water = [river.buffer(14, quad_segs=4)]
    for cx, cy in [centres_m[i] for i in rng.choice(len(centres_m), size=6, replace=False)]:
        turn = rng.uniform(0, 2 * math.pi)
        pond = affinity.scale(Point(0, 0).buffer(1, quad_segs=8), rng.uniform(25, 60), rng.uniform(18, 40))
        pond = affinity.rotate(pond, float(np.degrees(turn)), origin=(0, 0))
        water.append(affinity.translate(pond, cx + 260 * math.cos(turn), cy + 260 * math.sin(turn)))
    # Settlements round their households, and a house for each.
    settlements = []
    for cx, cy in centres_m:
        near = homes_m[np.hypot(homes_m[:, 0] - cx, homes_m[:, 1] - cy) < 480]
        if len(near):
            blob = shapely.union_all([Point(p).buffer(38, quad_segs=3) for p in near]).buffer(-8).simplify(6)
            settlements += [Polygon(p.exterior) for p in getattr(blob, "geoms", [blob]) if p.area > 20_000]
    houses = []
    for hx, hy in homes_m:
        house = affinity.rotate(shapely.box(hx - 6, hy - 4.5, hx + 6, hy + 4.5), angle + float(rng.choice([0, 90])),
                                origin=(hx, hy))  # fmt: skip
        houses.append(house)
    # Roads: a provincial road west to east, a county road north to south, village roads
    # joining the settlements (a minimum spanning tree), and streets through each village.
    roads: list[tuple[LineString, float, str]] = []
    cx_all, cy_all = np.mean([c[0] for c in centres_m]), np.mean([c[1] for c in centres_m])
    bend = rng.uniform(-300, 300, 4)
    roads.append((LineString([(minx - 500, cy_all + bend[0]), (cx_all, cy_all + bend[1]),
                              (maxx + 500, cy_all + bend[2])]), 16.0, "main"))  # fmt: skip
    roads.append((LineString([(cx_all + bend[3], maxy + 500), (cx_all + bend[3] * 0.4, cy_all),
                              (cx_all - bend[3], miny - 500)]), 12.0, "main"))  # fmt: skip
    for a, b in _spanning_tree(centres_m):
        (ax, ay), (bx, by) = centres_m[a], centres_m[b]
        mid = ((ax + bx) / 2 + rng.normal(0, 60), (ay + by) / 2 + rng.normal(0, 60))
        roads.append((LineString([(ax, ay), mid, (bx, by)]), 7.0, "village"))
    for cx, cy in centres_m:
        for turn in (angle, angle + 90):
            length = float(rng.uniform(300, 520))
            dx, dy = math.cos(math.radians(turn)) * length / 2, math.sin(math.radians(turn)) * length / 2
            roads.append((LineString([(cx - dx, cy - dy), (cx + dx, cy + dy)]), 5.0, "street"))
    if labels is None:
        labels = [(cx, cy, demo_township.VILLAGES[n % len(demo_township.VILLAGES)]) for n, (cx, cy) in
                  enumerate(centres)]  # fmt: skip
    return Ground(box=outline.buffer(0.015).bounds, wide=outline.buffer(WIDE_DEG).bounds,
                  fields=[to_lonlat(f) for f in fields],
                  water=[to_lonlat(w) for w in water], settlements=[to_lonlat(s) for s in settlements],
                  houses=[to_lonlat(h) for h in houses], roads=[(to_lonlat(r), w, k) for r, w, k in roads],
                  labels=labels)  # fmt: skip


def _spanning_tree(points: list[tuple[float, float]]) -> list[tuple[int, int]]:
    """Prim's minimum spanning tree of *points* (a handful): the village roads."""
    joined, edges = {0}, []
    while len(joined) < len(points):
        best = min((math.dist(points[a], points[b]), a, b) for a in joined for b in range(len(points))
                   if b not in joined)  # fmt: skip
        edges.append((best[1], best[2]))
        joined.add(best[2])
    return edges


def village_labels(conn: Connection, settings: Settings, seed: int) -> list[tuple[float, float, str]]:
    """One name per village grid, on the settlement in it nearest its middle (or its middle when none is)."""
    _, _, centres = demo_township.place(seed)
    rows = conn.execute(sa.text(
        "SELECT name, ST_AsBinary(geom) AS geom FROM grids WHERE level = :level AND valid_to IS NULL ORDER BY code"
    ), {"level": settings.levels[1]}).all()  # fmt: skip
    labels = []
    for row in rows:
        area = shapely.from_wkb(bytes(row.geom))
        middle = area.representative_point()
        inside = [c for c in centres if area.contains(Point(c))]
        lon, lat = min(inside, key=lambda c: middle.distance(Point(c))) if inside else (middle.x, middle.y)
        labels.append((lon, lat, row.name))
    return labels


# -- drawing ------------------------------------------------------------------------------------


def _tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    n = 2.0**z

    def lat(row: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def tiles_box(box: tuple[float, float, float, float], z: int) -> tuple[float, float, float, float]:
    """The box (west, south, east, north) of the zoom-*z* tiles that cover *box*."""
    (left, top), (right, bottom) = _tile_of(box[0], box[3], z), _tile_of(box[2], box[1], z)
    return _tile_bounds(z, left, bottom)[0], _tile_bounds(z, left, bottom)[1], *_tile_bounds(z, right, top)[2:]


def tiles_of(box: tuple[float, float, float, float], zooms: Iterable[int]) -> Iterator[tuple[int, int, int]]:
    """Every tile z/x/y over *box* (west, south, east, north) at *zooms*."""
    west, south, east, north = box
    for z in zooms:
        (left, top), (right, bottom) = _tile_of(west, north, z), _tile_of(east, south, z)
        for x in range(left, right + 1):
            for y in range(top, bottom + 1):
                yield z, x, y


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


class Painter:
    """Draws :class:`Ground` tiles (PNG bytes)."""

    def __init__(self, land: Ground):
        self.land = land
        self.layers = {name: (items, shapely.STRtree(items)) for name, items in (
            ("fields", land.fields), ("water", land.water), ("settlements", land.settlements),
            ("houses", land.houses), ("roads", [r for r, _, _ in land.roads]))}  # fmt: skip
        self.font = {size: ImageFont.truetype(str(FONT), size * _SCALE) for size in (12, 14)} if FONT.exists() else {}

    def _in(self, name: str, box: Polygon) -> list[int]:
        return sorted(self.layers[name][1].query(box).tolist())

    def tile(self, z: int, x: int, y: int) -> bytes:
        """The PNG of tile z/x/y."""
        size = 256 * _SCALE
        n = 2.0**z
        box = shapely.box(*_tile_bounds(z, x, y)).buffer(0.001)
        metres = 156_543.03 * math.cos(math.radians(demo_township.CENTRE[1])) / n / _SCALE  # per drawn pixel

        def px(geom) -> list[tuple[float, float]]:
            xy = shapely.get_coordinates(geom)
            gx = ((xy[:, 0] + 180) / 360 * n - x) * size
            gy = ((1 - np.arcsinh(np.tan(np.radians(xy[:, 1]))) / np.pi) / 2 * n - y) * size
            return list(zip(gx.tolist(), gy.tolist(), strict=True))

        image = Image.new("RGB", (size, size), _COLOURS["ground"])
        draw = ImageDraw.Draw(image)
        fields = self.layers["fields"][0]
        for i in self._in("fields", box):
            outline = _COLOURS["ridge"] if z >= 14 else None
            draw.polygon(px(fields[i].exterior), fill=_COLOURS["field"][i % len(_COLOURS["field"])], outline=outline)
        for i in self._in("settlements", box):
            draw.polygon(px(self.land.settlements[i].exterior), fill=_COLOURS["settlement"])
        for i in self._in("water", box):
            draw.polygon(px(self.land.water[i].exterior), fill=_COLOURS["water"], outline=_COLOURS["water_edge"])
        if z >= 15:
            for i in self._in("houses", box):
                draw.polygon(px(self.land.houses[i].exterior), fill=_COLOURS["house"], outline=_COLOURS["house_edge"])
        wanted = {"main": 0, "village": 13, "street": 14}
        found = [self.land.roads[i] for i in self._in("roads", box)]
        for kinds, casing in ((("street", "village"), True), (("street", "village"), False), (("main",), True),
                              (("main",), False)):  # fmt: skip
            for line, width_m, kind in found:
                if kind not in kinds or z < wanted[kind]:
                    continue
                width = max(width_m / metres, {"main": 3, "village": 2, "street": 1.5}[kind] * _SCALE)
                colour = (_COLOURS["main_casing"] if kind == "main" else _COLOURS["casing"]) if casing else (
                    _COLOURS["main"] if kind == "main" else _COLOURS["road"])  # fmt: skip
                draw.line(px(line), fill=colour, width=round(width + (2 * _SCALE if casing else 0)), joint="curve")
        if self.font and z >= 13:
            font = self.font[14 if z >= 15 else 12]
            for lon, lat, name in self.land.labels:
                ((gx, gy),) = px(Point(lon, lat))
                if -size < gx < 2 * size and -size < gy < 2 * size:
                    draw.text((gx, gy), name, font=font, fill=_COLOURS["label"], anchor="mm",
                              stroke_width=2 * _SCALE, stroke_fill="#ffffff")  # fmt: skip
        out = io.BytesIO()
        image.resize((256, 256), Image.Resampling.LANCZOS).save(out, format="PNG", optimize=False)
        return out.getvalue()


def write(file: Path, land: Ground, zooms: Iterable[int] = ZOOMS, progress=lambda message: None) -> int:
    """Draw every tile of *land* at *zooms* into the MBTiles *file*; returns how many tiles."""
    painter = Painter(land)
    zooms = list(zooms)
    wanted = [tile for z in zooms for tile in tiles_of(land.wide if z < 16 else land.box, [z])]
    west, south, east, north = land.box

    def drawn():
        for n, (z, x, y) in enumerate(wanted, start=1):
            if n % 100 == 0:
                progress(f"basemap: {n} of {len(wanted)} tiles")
            yield z, x, y, painter.tile(z, x, y)

    metadata = {"name": TITLE, "format": "png", "type": "baselayer", "minzoom": min(zooms), "maxzoom": max(zooms),
                "bounds": f"{west:.6f},{south:.6f},{east:.6f},{north:.6f}",
                "attribution": "geogrid 示范数据（按种子随机生成，非真实地点）",
                "description": "The geogrid demo township's invented land", "geogrid_drawing": DRAWING}  # fmt: skip
    return basemaps.write_mbtiles(file, drawn(), metadata)


def ensure(conn: Connection, settings: Settings, seed: int, progress=lambda message: None) -> Path:
    """Make the demo's basemap once (its places named after the village grids), register it, and make it
    the default."""
    file = settings.home / "basemaps" / f"demo-{seed}.mbtiles"
    if not file.exists() or basemaps.mbtiles_metadata(file).get("geogrid_drawing") != DRAWING:
        count = write(file, ground(seed, village_labels(conn, settings, seed)), progress=progress)
        progress(f"basemap: {count} tiles in {file}")
    config = basemaps.load(settings)
    if not any(b.name == NAME and b.file == str(file) for b in config.basemaps):
        basemaps.add_mbtiles(settings, file, name=NAME, title=TITLE)
    return file
