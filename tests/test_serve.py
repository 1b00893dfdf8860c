"""`geogrid serve`: waitress in several processes on one socket, supervised."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from geogrid.server import child_pids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(base: str, server: subprocess.Popen) -> None:
    for _ in range(150):
        assert server.poll() is None, server.communicate()
        try:
            if requests.get(base + "/api/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("geogrid serve did not answer")


def test_serve_runs_supervised_worker_processes(scratch_url):
    port = _free_port()
    env = {**os.environ, "GEOGRID_DATABASE_URL": scratch_url}
    server = subprocess.Popen([str(Path(sys.executable).parent / "geogrid"), "serve", "--port", str(port),
                               "--processes", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base, server)
        workers = child_pids(server.pid)
        assert len(workers) == 2
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda _: requests.get(base + "/api/health", timeout=10).status_code, range(64)))
        assert statuses == [200] * 64
        # A worker that dies is replaced; the server keeps answering meanwhile.
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (len(child_pids(server.pid)) < 2 or victim in child_pids(server.pid)):
            time.sleep(0.1)
        assert len(child_pids(server.pid)) == 2 and victim not in child_pids(server.pid)
        assert requests.get(base + "/api/health", timeout=10).status_code == 200
        remaining = child_pids(server.pid)
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "with 2 process(es)" in out
    time.sleep(0.5)
    assert not any(Path(f"/proc/{pid}").exists() for pid in remaining), "workers outlived the server"
