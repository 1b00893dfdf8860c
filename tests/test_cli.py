"""The CLI end to end against a database of its own: users, tokens, the demo grid."""

from __future__ import annotations

import re

import sqlalchemy as sa
from click.testing import CliRunner

from geogrid import accounts
from geogrid.cli import main


def run(url: str, *args: str, input: str | None = None, home=None):
    env = {"GEOGRID_DATABASE_URL": url, **({"GEOGRID_HOME": str(home)} if home else {})}
    result = CliRunner().invoke(main, list(args), env=env, input=input)
    return result


def test_users_add_prints_a_working_token_once(scratch_url):
    result = run(scratch_url, "users", "add", "li.lei", "--role", "supervisor")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("gg_") and len(token) > 40
    engine = sa.create_engine(scratch_url)
    with engine.connect() as conn:
        who = accounts.principal_for_token(conn, token)
    assert who is not None and who.name == "li.lei" and who.role == "supervisor"
    again = run(scratch_url, "users", "add", "li.lei", "--role", "supervisor")
    assert again.exit_code == 1 and again.output.strip() == "geogrid: user 'li.lei' already exists"
    revoked = run(scratch_url, "users", "revoke", token)
    assert revoked.exit_code == 0
    with engine.connect() as conn:
        assert accounts.principal_for_token(conn, token) is None
    engine.dispose()


def test_users_add_with_password_prompt(scratch_url):
    result = run(scratch_url, "users", "add", "han", "--role", "planner", "--password",
                 input="long enough\nlong enough\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(scratch_url)
    with engine.connect() as conn:
        assert accounts.check_password(conn, "han", "long enough").role == "planner"
        assert accounts.check_password(conn, "han", "wrong one") is None
    engine.dispose()


def test_worker_user_becomes_a_person(scratch_url):
    assert run(scratch_url, "users", "add", "wang", "--role", "worker").exit_code == 0
    engine = sa.create_engine(scratch_url)
    with engine.connect() as conn:
        name = conn.execute(sa.text(
            "SELECT p.name FROM users u JOIN people p ON p.id = u.person_id WHERE u.name = 'wang'"
        )).scalar_one()  # fmt: skip
    assert name == "wang"
    engine.dispose()


def test_demo_loads_a_tiling_hierarchy_idempotently(demo_township_run):
    # The run's shared demo township is built by `geogrid demo` (tests/conftest.py): its first output is here.
    scratch_url, tmp_path, first = demo_township_run.url, demo_township_run.home, demo_township_run
    summary = "demo township: 18 villages, 36 grids, 101 cells; 72 grid managers, 101 helpers; 330 incidents"
    assert summary in first.output and "demo / geogrid-demo" in first.output
    assert "demo-worker / geogrid-demo" in first.output  # the grid worker's account, for the phone page
    # Its own basemap, made once, named after its village grids, and what the pages open with.
    assert re.search(r"basemap: \d{3} tiles in .*demo-20261120.mbtiles", first.output), first.output
    listing = run(scratch_url, "basemap", "list", home=tmp_path).output
    assert listing.startswith("* demo ") and "示范乡底图" in listing
    again = run(scratch_url, "demo", home=tmp_path)
    assert summary in again.output and "grids: 18 villages" not in again.output  # nothing built twice
    assert "basemap:" not in again.output
    engine = sa.create_engine(scratch_url)
    with engine.connect() as conn:
        levels = dict(conn.execute(sa.text("SELECT level, count(*) FROM grids GROUP BY level")).all())
        assert levels == {"township": 1, "village": 18, "grid": 36, "cell": 101}
        # Children cover their parent: the symmetric difference is (numerically) nothing.
        # Compared in the storage CRS, where a vertex the split put on an edge is exactly
        # collinear; projected or cast to geography, that edge bends and the degenerate
        # slivers gain area (~240 m² here). 1e-10 deg² is about 1 m² at this latitude.
        mismatch = conn.execute(sa.text(
            """
            SELECT p.code, ST_Area(ST_SymDifference(p.geom, ST_Union(c.geom))) AS deg2
              FROM grids p JOIN grids c ON c.parent_code = p.code
             GROUP BY p.code, p.geom
            """
        )).all()  # fmt: skip
        assert len(mismatch) == 1 + 18 + 36  # every grid with children
        assert all(deg2 < 1e-10 for _, deg2 in mismatch), mismatch
        # Siblings do not overlap.
        overlap = conn.execute(sa.text(
            "SELECT coalesce(max(ST_Area(ST_Intersection(a.geom, b.geom))), 0) "
            "FROM grids a JOIN grids b ON a.parent_code = b.parent_code AND a.code < b.code"
        )).scalar_one()  # fmt: skip
        assert overlap < 1e-10
    engine.dispose()


def test_unknown_role_is_refused_by_the_cli(scratch_url):
    result = run(scratch_url, "users", "add", "x", "--role", "emperor")
    assert result.exit_code == 2 and "emperor" in result.output
