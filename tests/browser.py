"""A live geogrid server on a database of its own, and Debian's Chromium driven by Playwright.

The server runs in a thread on 127.0.0.1 with a real engine (the pages make many
requests, each its own transaction); the browser is /usr/bin/chromium, never a
downloaded one. Each page records console errors, page errors, dialogs and any
request that leaves 127.0.0.1, so a test can assert there were none.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip


@contextmanager
def live_server(app) -> Iterator[str]:
    """Serve *app* on a free loopback port in a thread; yields its base URL."""
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
    """What a page did that a test may forbid."""

    errors: list[str] = dataclasses.field(default_factory=list)
    external: list[str] = dataclasses.field(default_factory=list)
    dialogs: list[str] = dataclasses.field(default_factory=list)

    def watch(self, page, base: str) -> None:
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
    """Headless Debian Chromium with the flags a root sandbox-less run needs."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def sign_in(page, base: str, name: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def open_map(page, url: str, shots: Path | None = None, name: str | None = None) -> None:
    """Go to a map page and wait until its script says it is ready; screenshot it when asked."""
    page.goto(url)
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=20_000)
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
