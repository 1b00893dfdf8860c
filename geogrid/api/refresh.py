"""Patrol days brought up to date in the background after uploads, so the supervisor's pages find them ready.

An upload of tracks marks the days it touched; a thread of the serving process waits
``GEOGRID_REFRESH_S`` seconds (uploads from many terminals in that time are taken
together) and brings each marked day up to date (:func:`geogrid.patrols.compute.ensure_coverage`:
the whole day if it was never computed, else only the workers whose tracks came in).
A page that opens before then still brings the day up to date itself, as before; two at
once do the work once (the day's lock). With a test's connection as the bind, or
``GEOGRID_REFRESH_S=0``, nothing runs in the background.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from sqlalchemy.engine import Engine

from geogrid.config import Settings
from geogrid.errors import GeogridError
from geogrid.patrols.compute import ensure_coverage
from geogrid.store.db import unit_of_work

log = logging.getLogger(__name__)


class Refresher:
    """Days to bring up to date, and the thread that does it (started with the first day marked)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings, self.engine = settings, engine
        self._days: set[dt.date] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: Days brought up to date so far (for the tests and the log).
        self.done = 0

    def mark(self, days) -> None:
        """Bring *days* up to date soon."""
        with self._lock:
            self._days.update(days)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="geogrid-refresh", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.settings.refresh_s)  # what else comes in meanwhile is done with it
            with self._lock:
                days, self._days = sorted(self._days), set()
                self._wake.clear()
            for day in days:
                self._refresh(day)

    def _refresh(self, day: dt.date) -> None:
        started = time.perf_counter()
        try:
            with unit_of_work(self.engine, actor="geogrid:refresh") as conn:
                who = ensure_coverage(conn, self.settings, day)
        except GeogridError as err:  # a day to come, a database gone for a moment: a page will do it
            log.warning("coverage of %s not brought up to date: %s", day, err)
            return
        except Exception:  # never let the thread die: the next upload tries again
            log.exception("coverage of %s not brought up to date", day)
            return
        self.done += 1
        log.info("coverage of %s brought up to date (%s) in %.1f s", day,
                 "all" if who is None else f"{len(who)} worker(s)", time.perf_counter() - started)  # fmt: skip


def refresher(settings: Settings, bind) -> Refresher | None:
    """The app's refresher, or None when it has none (a test's connection, or switched off)."""
    if not isinstance(bind, Engine) or settings.refresh_s <= 0:
        return None
    return Refresher(settings, bind)
