"""`geogrid basemap ...`: the map pages' backgrounds (one list, in ``$GEOGRID_HOME/basemaps.json``)."""

from __future__ import annotations

from pathlib import Path

import click

from geogrid.cli.context import Group, settings_of


@click.group(cls=Group)
def basemap() -> None:
    """Basemaps the pages offer: tile templates, Tianditu, GCJ-02 maps, MBTiles files geogrid serves."""


@basemap.command("list")
@click.pass_context
def basemap_list(ctx):
    """The configured basemaps, the default marked with *; keys are not shown."""
    from geogrid import basemaps

    config = basemaps.load(settings_of(ctx))
    if not config.basemaps:
        click.echo("no basemap: add one with `geogrid basemap add`")
    for b in config.basemaps:
        mark = "*" if b.name == config.default else " "
        where = b.file if b.file else " + ".join(u.split("?")[0] for u in b.urls)
        missing = ""
        if b.key_name and not config.keys.get(b.key_name):
            missing = f" (no {b.key_name} key: not shown)"
        elif b.file and not Path(b.file).exists():
            missing = " (file missing)"
        click.echo(f"{mark} {b.name:<16} {b.title}  [{b.datum}] {where}{missing}")


@basemap.command("add")
@click.argument("source")
@click.option("--name", help="Short name (lower case, digits, - or _); default: from the file name.")
@click.option("--title", help="What the switcher shows (e.g. 城区影像).")
@click.option("--datum", type=click.Choice(["wgs84", "gcj02"]), default="wgs84", show_default=True,
              help="gcj02 for Amap-style maps: drawn with a shifted projection, data stays WGS84.")  # fmt: skip
@click.option("--subdomains", default="", help="What {s} in the template takes, e.g. abc or 1234.")
@click.option("--annotation", help="A second template drawn on top (labels).")
@click.option("--attribution", default="", help="The credit the tiles' licence asks for.")
@click.option("--max-zoom", type=int, default=18, show_default=True, help="Deepest zoom with tiles.")
@click.pass_context
def basemap_add(ctx, source, name, title, datum, subdomains, annotation, attribution, max_zoom):
    """Add SOURCE: an XYZ/WMTS tile template (http...{z}/{x}/{y}), or an MBTiles file geogrid serves.

    \b
    geogrid basemap add city.mbtiles --title 城区
    geogrid basemap add 'http://tiles.intranet/{z}/{x}/{y}.png' --name intranet --title 政务网底图
    geogrid basemap add "$AMAP" --name amap --title 高德地图 --datum gcj02 --subdomains 1234
      (AMAP: an Amap-style template, https://webrd0{s}.is.autonavi.com/appmaptile?...&x={x}&y={y}&z={z})
    """
    from geogrid import basemaps
    from geogrid.errors import InvalidInput

    settings = settings_of(ctx)
    if "://" in source:
        if not name:
            raise InvalidInput("give the basemap a --name")
        made = basemaps.add_template(settings, name, source, title=title, datum=datum, subdomains=subdomains,
                                     attribution=attribution, annotation=annotation, max_zoom=max_zoom)  # fmt: skip
    else:
        made = basemaps.add_mbtiles(settings, Path(source), name=name, title=title)
    click.echo(f"added basemap {made.name} ({made.title}); pages show it on their next load")


@basemap.command("tianditu")
@click.option("--key", required=True, envvar="GEOGRID_TIANDITU_KEY",
              help="Your Tianditu key (tk); kept in the basemaps file, never in the repository.")  # fmt: skip
@click.pass_context
def basemap_tianditu(ctx, key):
    """Add Tianditu (天地图) vector and imagery maps, each with its annotation layer."""
    from geogrid import basemaps

    for made in basemaps.add_tianditu(settings_of(ctx), key):
        click.echo(f"added basemap {made.name} ({made.title})")


@basemap.command("default")
@click.argument("name")
@click.pass_context
def basemap_default(ctx, name):
    """The basemap pages open with (none: no basemap); a user's own pick on a page wins in their browser."""
    from geogrid import basemaps

    basemaps.set_default(settings_of(ctx), name)
    click.echo(f"pages open with {name}")


@basemap.command("remove")
@click.argument("name")
@click.pass_context
def basemap_remove(ctx, name):
    """Take a basemap off the list (an MBTiles file itself is left where it is)."""
    from geogrid import basemaps

    basemaps.remove(settings_of(ctx), name)
    click.echo(f"removed basemap {name}")
