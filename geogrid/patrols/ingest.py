"""Store cleaned patrol tracks and their fixes: one transaction, idempotent by (person, time).

A terminal or a phone that sends its track as it goes (every minute, say) sends pieces of
one patrol: an upload whose first fix follows the person's last stored fix within the
track gap (``GEOGRID_TRACK_GAP_S``), at a possible speed, continues that track rather than
starting a new one, so the way walked between two uploads counts for coverage.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geogrid.config import Settings
from geogrid.patrols.clean import clean, plausible
from geogrid.patrols.files import Fix, read_fixes


@dataclasses.dataclass
class PatrolImport:
    """What an upload did: fixes read, stored, already there, and dropped by reason."""

    read: int
    stored: int
    already_there: int
    tracks: list[int]
    dropped: dict[str, int]
    #: The days (in the center's time zone) the stored tracks fall on: their coverage is stale now.
    days: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """One line for the CLI."""
        reasons = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.dropped.items() if v and k != "tracks")
        return (
            f"{self.read} fixes read: {self.stored} stored in {len(self.tracks)} track(s), "
            f"{self.already_there} already there, dropped: {reasons or 'none'}"
        )

    def to_json(self) -> dict:
        """Plain dict for the API."""
        return dataclasses.asdict(self)


def import_patrol(
    conn: Connection,
    settings: Settings,
    person_id: int,
    name: str,
    data: bytes,
    *,
    csv_columns: dict[str, str] | None = None,
) -> PatrolImport:
    """Read, clean and store one uploaded file for *person_id*; a bad file writes nothing."""
    fixes = read_fixes(name, data, timezone=settings.timezone, csv_columns=csv_columns)
    tracks, dropped = clean(fixes, settings)
    stored = 0
    track_ids = []
    for n, track in enumerate(tracks):
        continued = _continues(conn, settings, person_id, track[0]) if n == 0 else None
        if continued is not None:
            conn.execute(sa.text("UPDATE patrol_tracks SET ended_at = greatest(ended_at, :end) WHERE id = :id"),
                         {"id": continued, "end": track[-1].time})  # fmt: skip
        track_id = (
            continued
            or conn.execute(
                sa.text(
                    """
                INSERT INTO patrol_tracks (person_id, started_at, ended_at, fix_count, source)
                VALUES (:person, :start, :end, 0, :source)
                ON CONFLICT (person_id, started_at)
                DO UPDATE SET ended_at = GREATEST(patrol_tracks.ended_at, EXCLUDED.ended_at)
                RETURNING id
                """
                ),
                {"person": person_id, "start": track[0].time, "end": track[-1].time, "source": name},
            ).scalar_one()
        )
        track_ids.append(track_id)
        stored += conn.execute(
            sa.text(
                """
                INSERT INTO gps_fixes (person_id, fixed_at, geom, accuracy_m, track_id)
                SELECT :person, t, ST_SetSRID(ST_MakePoint(x, y), 4326), a, :track
                  FROM unnest(CAST(:times AS timestamptz[]), CAST(:xs AS float8[]), CAST(:ys AS float8[]),
                              CAST(:accuracy AS float8[])) AS f(t, x, y, a)
                ON CONFLICT (person_id, fixed_at) DO NOTHING
                """
            ),
            {"person": person_id, "track": track_id, "times": [f.time for f in track],
             "xs": [f.lon for f in track], "ys": [f.lat for f in track],
             "accuracy": [f.accuracy_m for f in track]},
        ).rowcount  # fmt: skip
    if track_ids:
        # Counts and lines follow the fixes actually stored (a re-upload may extend a track).
        conn.execute(
            sa.text(
                """
                UPDATE patrol_tracks t SET fix_count = s.n, geom = s.line,
                       updated_at = CASE WHEN s.n <> t.fix_count THEN now() ELSE t.updated_at END
                  FROM (SELECT track_id, count(*) AS n,
                               CASE WHEN count(*) >= 2 THEN ST_Multi(ST_MakeLine(geom ORDER BY fixed_at)) END AS line
                          FROM gps_fixes WHERE track_id = ANY(:ids) GROUP BY track_id) s
                 WHERE t.id = s.track_id
                """
            ),
            {"ids": track_ids},
        )
    kept = sum(len(t) for t in tracks)
    track_ids = list(dict.fromkeys(track_ids))
    days = conn.execute(
        sa.text(
            "SELECT DISTINCT d::date FROM patrol_tracks t, generate_series((t.started_at AT TIME ZONE :tz)::date, "
            "(t.ended_at AT TIME ZONE :tz)::date, interval '1 day') AS d WHERE t.id = ANY(:ids) ORDER BY 1"
        ),
        {"ids": track_ids, "tz": settings.timezone},
    ).scalars().all() if stored else []  # fmt: skip
    return PatrolImport(
        read=len(fixes), stored=stored, already_there=kept - stored, tracks=track_ids,
        dropped={k: v for k, v in dropped.items() if k != "tracks"}, days=[d.isoformat() for d in days],
    )  # fmt: skip


def _continues(conn: Connection, settings: Settings, person_id: int, first: Fix) -> int | None:
    """The person's track that *first* continues: its last fix came before it, within the track gap, at a
    possible speed; else None."""
    row = conn.execute(
        sa.text(
            """
            SELECT f.track_id, f.fixed_at, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat
              FROM gps_fixes f
             WHERE f.person_id = :p AND f.fixed_at < :t AND f.fixed_at >= :t - make_interval(secs => :gap)
               AND f.track_id IS NOT NULL
             ORDER BY f.fixed_at DESC LIMIT 1
            """
        ),
        {"p": person_id, "t": first.time, "gap": settings.track_gap_s},
    ).mappings().first()  # fmt: skip
    if row is None or not plausible(Fix(row["fixed_at"], row["lon"], row["lat"]), first, settings):
        return None
    return row["track_id"]
