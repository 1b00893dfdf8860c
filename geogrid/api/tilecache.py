"""Coverage tiles kept in memory once made, until the day's coverage changes.

A supervisor's map of a day asks for the same tiles every time it opens (and so do the
other supervisors): a tile of a past day, or of today between two uploads, is the same
bytes. Each entry is keyed by what makes the tile (day, tile, grid, datum, size) and by
the day's *stamp* (when its coverage was last computed, and how many rows): once the day
is brought up to date, its old tiles are never served again and age out. Each serving
process keeps its own, at most ``LIMIT_BYTES``, least recently used out first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

#: What one process keeps at most.
LIMIT_BYTES = 64 * 1024 * 1024


class TileCache:
    """A thread-safe least-recently-used map of keys to tile bytes, bounded in bytes."""

    def __init__(self, limit_bytes: int = LIMIT_BYTES) -> None:
        self.limit = limit_bytes
        self._tiles: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        """The tile of *key*, made by *make* when it is not kept (two requests at once may both make it)."""
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
                self.hits += 1
                return tile
            self.misses += 1
        tile = make()
        with self._lock:
            if key not in self._tiles and len(tile) <= self.limit:
                self._tiles[key] = tile
                self._size += len(tile)
                while self._size > self.limit:
                    _, old = self._tiles.popitem(last=False)
                    self._size -= len(old)
        return tile

    def clear(self) -> None:
        """Forget every tile (the benchmark measures a cold start with it)."""
        with self._lock:
            self._tiles.clear()
            self._size = 0
