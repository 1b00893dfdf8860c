"""Throw-away databases, a live server and Debian's Chromium: shared by tests, benchmarks and scripts.

Nothing here runs at import; Playwright (a dev dependency) is only driven through the
``playwright`` object a caller hands in. Used by ``tests/conftest.py``, ``bench/*.py``
and ``scripts/*.py`` (no ``sys.path`` tricks: this is part of the package).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geogrid.config import Settings
from geogrid.store.db import database_url, make_engine
from geogrid.store.embedded import EmbeddedCluster
from geogrid.store.migrate import upgrade

# -- databases ---------------------------------------------------------------------------


@contextmanager
def scratch_database(settings: Settings, name: str) -> Iterator[Engine]:
    """Create database *name* (replacing one left by an interrupted run), migrate it, drop it at the end."""
    admin = sa.create_engine(database_url(settings, start=True, database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(settings, database=name)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Databases:
    """Throw-away databases on the configured server, each copied from one migrated template.

    Reuses a running embedded cluster and stops it at the end only if it started it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        cluster = None if settings.database_url else EmbeddedCluster(settings.home)
        self.started = cluster if cluster and not cluster.status().running else None
        self.admin = sa.create_engine(
            database_url(settings, start=True, database="postgres"), isolation_level="AUTOCOMMIT"
        )
        self.prefix = f"geogrid_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.template = f"{self.prefix}_template"
        self.made: list[str] = []
        self._create(self.template, template=None)
        engine = make_engine(settings, database=self.template)
        upgrade(engine)
        engine.dispose()

    def _create(self, name: str, template: str | None) -> None:
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"{clause}'))
        self.made.append(name)

    def new(self) -> str:
        """A new migrated database; returns its SQLAlchemy URL."""
        name = f"{self.prefix}_{len(self.made)}"
        self._create(name, template=self.template)
        return database_url(self.settings, database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database made here (and stop the cluster if this started it)."""
        with self.admin.connect() as conn:
            for name in reversed(self.made):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()
        if self.started is not None:
            self.started.down()


# -- a live server and the browser ------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip


@contextmanager
def live_server(app) -> Iterator[str]:
    """Serve *app* on a free loopback port in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@dataclasses.dataclass
class PageLog:
    """What a page did that a test may forbid: errors, requests leaving 127.0.0.1, dialogs."""

    errors: list[str] = dataclasses.field(default_factory=list)
    external: list[str] = dataclasses.field(default_factory=list)
    dialogs: list[str] = dataclasses.field(default_factory=list)

    def watch(self, page, base: str) -> None:
        """Start recording what *page* does."""
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        # A request cut short by leaving the page (net::ERR_ABORTED) is not a failure of the page.
        page.on("requestfailed", lambda r: None if "ERR_ABORTED" in (r.failure or "")
                else self.errors.append(f"request failed: {r.url} {r.failure}"))  # fmt: skip
        local = (base, "data:", "blob:")
        page.on("request", lambda r: None if r.url.startswith(local) else self.external.append(r.url))

        def dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)


def launch(playwright):
    """Headless Debian Chromium (never a downloaded one) with the flags a root sandbox-less run needs."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def sign_in(page, base: str, name: str, password: str) -> None:
    """Sign in through the login page."""
    page.goto(base + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def open_map(page, url: str, shots: Path | None = None, name: str | None = None) -> None:
    """Go to a map page and wait until its script says it is ready; screenshot it when asked."""
    page.goto(url)
    # A selector, not a JS predicate: the pages' Content-Security-Policy refuses eval.
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=20_000)
    if shots is not None and name:
        page.wait_for_timeout(300)  # let tiles and labels paint
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"{name}.png"))


def screen_point(page, lon: float, lat: float) -> tuple[float, float]:
    """Where (lon, lat) is on the screen now."""
    return page.evaluate(
        """([lon, lat]) => {
            const div = document.querySelector('.folium-map');
            const p = window[div.id].latLngToContainerPoint([lat, lon]);
            const box = div.getBoundingClientRect();
            return [box.left + p.x, box.top + p.y];
        }""",
        [lon, lat],
    )
