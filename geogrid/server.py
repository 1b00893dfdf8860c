"""``geogrid serve``: waitress in one or more processes sharing one listening socket.

Python runs one thread at a time per process, so one waitress process uses about one
core however many threads it has; under load (bench/load.py: 200 handsets and 20
operators) requests queue behind each other. With ``processes`` > 1 the socket is
bound once and the process forks that many workers, each with its own app and
database pool, all accepting from the same socket (the kernel spreads connections).
The parent only supervises: a worker that dies is replaced; SIGTERM or Ctrl-C stops
them all.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

from geogrid.config import Settings

#: Hundreds of handsets keep connections open: waitress's default limit (100) would
#: leave the rest waiting (bench/load.py).
CONNECTION_LIMIT = 2000


def serve(settings: Settings, host: str, port: int, processes: int) -> None:
    """Serve the app on *host*:*port* with *processes* waitress processes (blocks until stopped)."""
    sock = socket.create_server((host, port), backlog=2048)
    if processes <= 1:
        _worker(settings, sock)
        return
    workers: dict[int, int] = {}  # pid -> slot
    stopping = False

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            _signal(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(processes):
        workers[_fork(settings, sock)] = slot
    while workers:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        slot = workers.pop(pid, None)
        if slot is not None and not stopping:
            print(f"geogrid: worker {pid} exited ({status}); starting another", file=sys.stderr, flush=True)
            time.sleep(0.5)  # no busy loop if workers keep dying
            workers[_fork(settings, sock)] = slot
    sock.close()


def _fork(settings: Settings, sock: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            _worker(settings, sock)
        finally:
            os._exit(0)
    return pid


def _worker(settings: Settings, sock: socket.socket) -> None:
    import waitress

    from geogrid.api import create_app

    # Each process makes its own app and database pool (connections do not survive a fork).
    app = create_app(settings)
    waitress.serve(app, sockets=[sock], threads=settings.threads, ident="geogrid", connection_limit=CONNECTION_LIMIT)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def child_pids(parent: int) -> set[int]:
    """The live processes whose parent is *parent* (from /proc; Linux)."""
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.add(int(entry.name))
    return found
