"""Clean raw fixes into tracks, counting every fix dropped by its reason.

In file order: fixes with no time, with poor accuracy (over ``max_accuracy_m``),
repeating the last kept time, going back in time, or implying a jump faster than
``max_speed_mps`` (geodesic distance from the last kept fix) are dropped; a pause over
``track_gap_s`` or a new recorded segment starts a new track. When a track's first fix
is the one that jumped (its successors agree with each other, not with it), that first
fix is dropped instead of the good ones after it.
"""

from __future__ import annotations

from collections import Counter

import pyproj

from geogrid.config import Settings
from geogrid.patrols.files import Fix

_GEOD = pyproj.Geod(ellps="WGS84")
REASONS = ("no_time", "poor_accuracy", "duplicate_time", "time_backwards", "impossible_jump")


def clean(fixes: list[Fix], settings: Settings) -> tuple[list[list[Fix]], Counter]:
    """Tracks of kept fixes, and how many fixes were dropped for each reason (plus ``tracks``)."""
    dropped: Counter = Counter({reason: 0 for reason in REASONS})
    tracks: list[list[Fix]] = []
    last: Fix | None = None
    for n, fix in enumerate(fixes):
        if fix.time is None:
            dropped["no_time"] += 1
            continue
        if fix.accuracy_m is not None and fix.accuracy_m > settings.max_accuracy_m:
            dropped["poor_accuracy"] += 1
            continue
        if last is not None and fix.segment == last.segment:
            elapsed = (fix.time - last.time).total_seconds()
            if elapsed == 0:
                dropped["duplicate_time"] += 1
                continue
            if elapsed < 0:
                dropped["time_backwards"] += 1
                continue
            if elapsed <= settings.track_gap_s and _speed(last, fix) > settings.max_speed_mps:
                dropped["impossible_jump"] += 1
                following = fixes[n + 1] if n + 1 < len(fixes) else None
                if (tracks[-1] == [last] and following is not None and following.time is not None
                        and following.segment == fix.segment and following.time > fix.time
                        and _speed(fix, following) <= settings.max_speed_mps):  # fmt: skip
                    tracks[-1].pop()  # the track began with the jump: drop it, keep this fix
                    tracks[-1].append(fix)
                    last = fix
                continue
        elif last is not None and fix.time <= last.time:
            # A new segment that starts before the last one ended is still time going back.
            dropped["duplicate_time" if fix.time == last.time else "time_backwards"] += 1
            continue
        if last is None or fix.segment != last.segment or (fix.time - last.time).total_seconds() > settings.track_gap_s:
            tracks.append([])
        tracks[-1].append(fix)
        last = fix
    dropped["tracks"] = len(tracks)
    return tracks, dropped


def plausible(a: Fix, b: Fix, settings: Settings) -> bool:
    """Whether one could go from *a* to *b* (b later) at no more than the top speed."""
    return _speed(a, b) <= settings.max_speed_mps


def _speed(a: Fix, b: Fix) -> float:
    """Metres per second from *a* to *b* (geodesic)."""
    _, _, metres = _GEOD.inv(a.lon, a.lat, b.lon, b.lat)
    return metres / max((b.time - a.time).total_seconds(), 1e-9)
