"""Fixtures: the real PostGIS (embedded, or GEOGRID_DATABASE_URL), a fresh database per run
built by the migrations, and one rolled-back transaction per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from geogrid import accounts
from geogrid.config import Settings
from geogrid.testing import Databases

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The run's settings: the project's embedded cluster unless GEOGRID_DATABASE_URL is set."""
    home = Path(os.environ.get("GEOGRID_HOME", ROOT / "var"))
    # English by default, so assertions read the source texts; Chinese (the product's
    # default) is tested where a test asks for it (tests/test_language.py).
    return Settings.from_env(home=home, secret_key="test-secret", language="en")


@pytest.fixture(scope="session")
def databases(settings: Settings) -> Iterator[Databases]:
    dbs = Databases(settings)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def engine(databases: Databases) -> Iterator[Engine]:
    """The run's own database, made by the migrations."""
    eng = sa.create_engine(databases.new())
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo_township_run(databases: Databases, tmp_path_factory):
    """The full demo township built once per run by `geogrid demo` itself (~35 s with its basemap): the database's
    URL, the command's output and its home folder. Read-only for the tests that share it."""
    from types import SimpleNamespace

    from click.testing import CliRunner

    from geogrid.cli import main

    url, home = databases.new(), tmp_path_factory.mktemp("demo-home")
    result = CliRunner().invoke(main, ["demo"], env={"GEOGRID_DATABASE_URL": url, "GEOGRID_HOME": str(home)})
    assert result.exit_code == 0, result.output
    return SimpleNamespace(url=url, output=result.output, home=home)


@pytest.fixture(scope="session")
def demo_township_url(demo_township_run) -> str:
    """URL of a database holding the full demo township (read-only)."""
    return demo_township_run.url


@pytest.fixture
def scratch_url(databases: Databases) -> str:
    """URL of a database of its own, for tests whose work commits (CLI runs)."""
    return databases.new()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def app(settings: Settings, conn: Connection):
    from geogrid.api import create_app

    flask_app = create_app(settings, bind=conn)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(conn: Connection):
    """make_user(role, name=None, password=None) -> (principal, token)."""
    counter = iter(range(1_000_000))

    def make(role: str, name: str | None = None, password: str | None = None, person_id=None):
        name = name or f"{role}{next(counter)}"
        return accounts.create_user(conn, name, role, password=password, person_id=person_id)

    return make


@pytest.fixture
def demo_grids(conn: Connection) -> list[dict]:
    """The small demo township loaded into this test's transaction."""
    from geogrid import demo

    demo.load(conn)
    return demo.township_grids()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, one per test module (geogrid.testing.launch)."""
    from playwright.sync_api import sync_playwright

    from geogrid.testing import launch

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


def demo_engine(databases: Databases):
    """An engine on a database of its own holding the 7-grid sample (geogrid.demo), for a live site."""
    from geogrid import demo

    engine = sa.create_engine(databases.new())
    with engine.begin() as conn:
        demo.load(conn)
    return engine


def helper_on(conn: Connection, cell: str, name: str = "王伟", phone: str = "13800000000") -> tuple[int, float, float]:
    """A grid helper with a phone on *cell* of the 7-grid sample since its start; (person id, lon, lat of a point
    inside the cell)."""
    from geogrid import demo

    person = conn.execute(sa.text("INSERT INTO people (name, phone) VALUES (:n, :p) RETURNING id"),
                          {"n": name, "p": phone}).scalar_one()  # fmt: skip
    conn.execute(sa.text("INSERT INTO assignments (person_id, grid_code, duty, valid_from) VALUES (:p, :c, "
                         "'grid_helper', :s)"), {"p": person, "c": cell, "s": demo.SINCE})  # fmt: skip
    x, y = conn.execute(sa.text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
                                "WHERE code = :c AND valid_to IS NULL) s"), {"c": cell}).one()  # fmt: skip
    return person, x, y


def zh_page(browser, base: str, log_base: str | None = None):
    """A Chinese browser page at 1366 x 768, signed in as the sample's admin, and what it logs."""
    from geogrid import demo
    from geogrid.testing import PageLog, sign_in

    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 768}, bypass_csp=True)
    page = context.new_page()
    log = PageLog()
    log.watch(page, log_base or base)
    sign_in(page, base, demo.ADMIN_NAME, demo.ADMIN_PASSWORD)
    return context, page, log


def jpeg(
    lon: float | None = None,
    lat: float | None = None,
    taken: str | None = None,
    pad: int = 0,
    size: tuple[int, int] = (640, 480),
) -> bytes:
    """A JPEG as a phone writes one: EXIF GPS position (WGS84) and time when given; *pad* bytes after its end."""
    import io

    from PIL import Image

    def dms(value: float) -> tuple[int, int, float]:
        minutes = (value - int(value)) * 60
        return int(value), int(minutes), round((minutes - int(minutes)) * 60, 4)

    exif = Image.Exif()
    if lon is not None and lat is not None:
        exif[0x8825] = {1: "N" if lat >= 0 else "S", 2: dms(abs(lat)), 3: "E" if lon >= 0 else "W", 4: dms(abs(lon))}
    if taken is not None:
        exif[0x8769] = {36867: taken, 36881: "+08:00"}
    out = io.BytesIO()
    Image.new("RGB", size, (120, 160, 90)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue() + b"\0" * pad
