"""Two planners edit the same grid at once: one wins, the other gets 409, nothing is lost."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from geogrid import demo
from geogrid.errors import Conflict
from geogrid.grids import edit


def test_concurrent_reshape_of_the_same_version(scratch_url, settings):
    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        demo.load(conn)
        grid = edit.lock_current(conn, "XWZ002002")
    same_ground = edit.Reshape("XWZ002002", grid.version, grid.geom)
    outcome: dict[str, object] = {}

    first = engine.connect()
    tx = first.begin()
    assert edit.reshape_grids(first, settings, [same_ground]) == ({"XWZ002002": 2}, 0)  # holds the row lock

    def second_planner():
        with engine.begin() as conn:
            try:
                outcome["result"] = edit.reshape_grids(conn, settings, [same_ground])
            except Conflict as err:
                outcome["error"] = err

    waiter = threading.Thread(target=second_planner)
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive(), "the second edit must wait for the first one's lock"
    tx.commit()
    first.close()
    waiter.join(timeout=10)
    assert "result" not in outcome
    assert isinstance(outcome["error"], Conflict)
    assert "version 1" in str(outcome["error"]) and outcome["error"].extra["current_version"] == 2
    with engine.connect() as conn:
        versions = conn.execute(
            sa.text("SELECT version, valid_to IS NULL FROM grids WHERE code = 'XWZ002002' ORDER BY version")
        ).all()
    assert versions == [(1, False), (2, True)]
    engine.dispose()


def test_concurrent_split_and_merge_of_one_grid(scratch_url, settings):
    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        demo.load(conn)
    first = engine.connect()
    tx = first.begin()
    line = edit.parse_geometry("LINESTRING(115.257 37.76, 115.258 37.79)")
    edit.split_grid(first, settings, "XWZ001002", line)
    outcome: dict[str, object] = {}

    def merge_it():
        with engine.begin() as conn:
            try:
                edit.merge_grids(conn, settings, ["XWZ001001", "XWZ001002"])
            except Exception as err:  # noqa: BLE001 - the test inspects what was raised
                outcome["error"] = err

    waiter = threading.Thread(target=merge_it)
    waiter.start()
    time.sleep(0.5)
    tx.commit()
    first.close()
    waiter.join(timeout=10)
    # XWZ001002 no longer exists once the split committed: the merge is refused, not half-done.
    assert "no grid XWZ001002" in str(outcome["error"])
    with engine.connect() as conn:
        current = (
            conn.execute(
                sa.text("SELECT code FROM grids WHERE parent_code = 'XWZ001' AND valid_to IS NULL ORDER BY code")
            )
            .scalars()
            .all()
        )
    assert current == ["XWZ001001", "XWZ001003", "XWZ001004"]
    engine.dispose()
