"""Start and stop the project-local PostGIS cluster under ``$GEOGRID_HOME/pg``.

The cluster is created with ``initdb`` on first use, trusts local connections only,
listens on a unix socket in ``$GEOGRID_HOME/run`` and on 127.0.0.1 at a free port.
PostgreSQL refuses to run as root, so as root the server runs as an unprivileged
user (``postgres`` when it exists, else a ``geogrid`` system user made for it).
``up`` is idempotent and recovers from a server killed with SIGKILL or a stale
``postmaster.pid``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from geogrid.errors import DatabaseUnavailable, PostGISMissing

#: Superuser and database the embedded cluster is made with.
DB_USER = "geogrid"
DB_NAME = "geogrid"
#: Unix socket paths are limited to 107 bytes on Linux.
_MAX_SOCKET_PATH = 100
_SETUP_HINT = "run `make demo` or `make test`, which install it from the OS packages"


@dataclasses.dataclass(frozen=True)
class PgInstall:
    """One installed PostgreSQL server version."""

    major: int
    bindir: Path
    sharedir: Path

    @property
    def has_postgis(self) -> bool:
        """True when the PostGIS extension is installed for this version."""
        return (self.sharedir / "extension" / "postgis.control").exists()

    def tool(self, name: str) -> str:
        """Absolute path of one of the server's programs."""
        return str(self.bindir / name)


@dataclasses.dataclass(frozen=True)
class ClusterStatus:
    """What ``geogrid db status`` reports about the embedded cluster."""

    initialized: bool
    running: bool
    pid: int | None = None
    port: int | None = None
    socket_dir: Path | None = None

    @property
    def url(self) -> str | None:
        """A TCP URL other tools (psql, QGIS) can use, when running."""
        if not self.running:
            return None
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def sqlalchemy_url(self, database: str = DB_NAME) -> str:
        """The URL geogrid itself connects with: the unix socket, no TCP overhead."""
        if not self.running:
            raise DatabaseUnavailable("the embedded database is not running: start it with `geogrid db up`")
        return f"postgresql+psycopg://{DB_USER}@/{database}?host={self.socket_dir}&port={self.port}"


def find_installs() -> list[PgInstall]:
    """Installed PostgreSQL servers, newest first (Debian, RHEL and PATH layouts)."""
    bindirs: list[Path] = []
    for root, pattern in [("/usr/lib/postgresql", "*/bin"), ("/usr", "pgsql-*/bin")]:
        bindirs += sorted(Path(root).glob(pattern))
    on_path = shutil.which("postgres")
    if on_path:
        bindirs.append(Path(on_path).resolve().parent)
    installs: dict[Path, PgInstall] = {}
    for bindir in bindirs:
        bindir = bindir.resolve()
        if bindir in installs or not (bindir / "postgres").exists():
            continue
        if not (bindir / "initdb").exists() or not (bindir / "pg_ctl").exists():
            continue
        major = _server_major(bindir)
        if major is None:
            continue
        installs[bindir] = PgInstall(major, bindir, _sharedir(bindir, major))
    return sorted(installs.values(), key=lambda i: i.major, reverse=True)


def _server_major(bindir: Path) -> int | None:
    try:
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None


def _sharedir(bindir: Path, major: int) -> Path:
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    debian = Path(f"/usr/share/postgresql/{major}")
    return debian if debian.exists() else bindir.parent / "share"


def choose_install(wanted_major: int | None = None) -> PgInstall:
    """The newest PostgreSQL with PostGIS (or exactly *wanted_major*); one-line errors."""
    installs = find_installs()
    if not installs:
        raise DatabaseUnavailable("PostgreSQL is not installed: {SETUP_HINT}", SETUP_HINT=_SETUP_HINT)
    if wanted_major is not None:
        installs = [i for i in installs if i.major == wanted_major]
        if not installs:
            raise DatabaseUnavailable(
                "the embedded cluster was made by PostgreSQL {wanted_major}, which is no longer installed: "
                "install postgresql-{wanted_major} or move the cluster away",
                wanted_major=wanted_major,
            )
    with_postgis = [i for i in installs if i.has_postgis]
    if not with_postgis:
        versions = ", ".join(str(i.major) for i in installs)
        raise PostGISMissing(
            "PostGIS is not installed for PostgreSQL {versions}: {SETUP_HINT}",
            versions=versions,
            SETUP_HINT=_SETUP_HINT,
        )
    return with_postgis[0]


class EmbeddedCluster:
    """The PostgreSQL cluster that geogrid runs itself under ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home).absolute()
        self.datadir = self.home / "pg"
        self.logfile = self.home / "pg.log"
        self._portfile = self.home / "pg.port"
        self._lockfile = self.home / "pg.lock"
        socket_dir = self.home / "run"
        if len(str(socket_dir)) + len("/.s.PGSQL.65535") > _MAX_SOCKET_PATH:
            # Long homes (deep CI paths) cannot hold a socket; use a short, stable one.
            digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
            socket_dir = Path("/tmp") / f"geogrid-{digest}"
        self.socket_dir = socket_dir

    # -- queries ---------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        """True when initdb has completed here."""
        return (self.datadir / "PG_VERSION").exists()

    def status(self) -> ClusterStatus:
        """Whether the server is running, and where."""
        if not self.initialized:
            return ClusterStatus(initialized=False, running=False)
        pid, port, socket_dir = self._read_pidfile()
        if pid is None or not self._is_our_server(pid):
            return ClusterStatus(initialized=True, running=False)
        return ClusterStatus(True, True, pid, port, Path(socket_dir) if socket_dir else None)

    # -- commands --------------------------------------------------------------

    def up(self, timeout_s: float = 60) -> ClusterStatus:
        """Create the cluster if needed and start it; a no-op when it already runs."""
        with self._locked():
            status = self.status()
            if status.running:
                return status
            if self.initialized:
                install = choose_install(int((self.datadir / "PG_VERSION").read_text().strip()))
            else:
                install = choose_install()
                self._initdb(install)
            self._clear_stale_server()
            port = self._choose_port()
            self._prepare_dir(self.socket_dir, mode=0o755)
            self.logfile.touch(mode=0o640, exist_ok=True)
            self._chown(self.logfile)
            cmd = [
                install.tool("pg_ctl"), "start", "-D", str(self.datadir), "-w",
                "-t", str(int(timeout_s)), "-l", str(self.logfile),
                "-o", f"-p {port} -k {self.socket_dir} -h 127.0.0.1",
            ]  # fmt: skip
            result = self._run_as_owner(cmd)
            status = self.status()
            if result.returncode != 0 or not status.running:
                raise DatabaseUnavailable(
                    "PostgreSQL did not start (see {logfile}): {log_tail}",
                    logfile=self.logfile,
                    log_tail=self._log_tail(),
                )
            self._portfile.write_text(str(port))
            self._ensure_database(status)
            return status

    def down(self, timeout_s: float = 60) -> bool:
        """Stop the server (fast shutdown). Returns False when it was not running."""
        with self._locked():
            status = self.status()
            if not status.running:
                self._clear_stale_server()
                return False
            install = choose_install(int((self.datadir / "PG_VERSION").read_text().strip()))
            cmd = [install.tool("pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast",
                   "-w", "-t", str(int(timeout_s))]  # fmt: skip
            result = self._run_as_owner(cmd)
            if result.returncode != 0 and self.status().running:
                raise DatabaseUnavailable("PostgreSQL did not stop: {strip}", strip=result.stderr.strip())
            return True

    # -- internals -------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise up/down between processes (two test runs, a CLI and a server)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self._lockfile, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _initdb(self, install: PgInstall) -> None:
        if self.datadir.exists():
            # An initdb that was interrupted leaves a folder without PG_VERSION.
            shutil.rmtree(self.datadir)
        self._prepare_dir(self.datadir, mode=0o700)
        cmd = [install.tool("initdb"), "-D", str(self.datadir), "-U", DB_USER,
               "--auth=trust", "--encoding=UTF8", "--no-locale"]  # fmt: skip
        result = self._run_as_owner(cmd)
        if result.returncode != 0:
            shutil.rmtree(self.datadir, ignore_errors=True)
            raise DatabaseUnavailable("initdb failed: {strip}", strip=result.stderr.strip()[-500:])
        # Local trust only: the unix socket and loopback; nothing else may connect.
        (self.datadir / "pg_hba.conf").write_text(
            "# geogrid embedded cluster: local connections only, trusted.\n"
            "local all all trust\n"
            "host  all all 127.0.0.1/32 trust\n"
            "host  all all ::1/128 trust\n"
        )
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# geogrid: the port and socket folder are given by `geogrid db up`.\n"
                "listen_addresses = '127.0.0.1'\n"
                "timezone = 'UTC'\n"
                "# JIT only adds compile time to geogrid's spatial joins (measured in bench/).\n"
                "jit = off\n"
                "log_timezone = 'UTC'\n"
            )
        self._chown(self.datadir / "pg_hba.conf")

    def _ensure_database(self, status: ClusterStatus) -> None:
        import psycopg  # local: keeps `geogrid db status` quick to start

        conninfo = f"host={status.socket_dir} port={status.port} user={DB_USER} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')

    def _read_pidfile(self) -> tuple[int | None, int | None, str | None]:
        # postmaster.pid: pid, datadir, start time, port, socket dir, listen addr, ...
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
            return int(lines[0]), int(lines[3]), lines[4] or None
        except (FileNotFoundError, IndexError, ValueError):
            return None, None, None

    def _is_our_server(self, pid: int) -> bool:
        """True when *pid* is a live postgres process working in our data directory."""
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            return False
        return state not in ("Z", "X") and Path(cwd) == self.datadir.resolve()

    def _leftover_processes(self) -> list[int]:
        """Every live process whose working directory is our data directory.

        After the postmaster is killed with SIGKILL its backends linger for a moment,
        holding the shared memory a new postmaster needs; they are found this way.
        """
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and self._is_our_server(int(entry.name)):
                found.append(int(entry.name))
        return found

    def _clear_stale_server(self) -> None:
        """Remove what a killed server left: orphaned backends and lock files."""
        deadline = time.monotonic() + 10
        while (pids := self._leftover_processes()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        if self._leftover_processes():
            raise DatabaseUnavailable(
                "old PostgreSQL processes in {datadir} would not exit; stop them and retry", datadir=self.datadir
            )
        pidfile = self.datadir / "postmaster.pid"
        if pidfile.exists():
            print(f"geogrid: removing stale {pidfile} left by a server that died", file=sys.stderr)
            pidfile.unlink()
        if self.socket_dir.exists():
            for lock in self.socket_dir.glob(".s.PGSQL.*"):
                lock.unlink(missing_ok=True)

    def _choose_port(self) -> int:
        """The port used last time when it is still free, else any free port."""
        try:
            previous = int(self._portfile.read_text())
        except (FileNotFoundError, ValueError):
            previous = 0
        if previous and _port_free(previous):
            return previous
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.logfile.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return "no log written"
        return " | ".join(text[-lines:])

    # -- running as an unprivileged user when root -------------------------------

    def _owner(self) -> pwd.struct_passwd | None:
        """The user the server runs as: None means the current user."""
        if os.geteuid() != 0:
            return None
        name = os.environ.get("GEOGRID_PG_USER", "postgres")
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        try:
            return pwd.getpwnam("geogrid")
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--user-group", "--no-create-home",
                 "--shell", "/usr/sbin/nologin", "geogrid"],
                check=True, capture_output=True,
            )  # fmt: skip
            return pwd.getpwnam("geogrid")

    def _run_as_owner(self, cmd: list[str]) -> subprocess.CompletedProcess:
        owner = self._owner()
        kwargs: dict = {"capture_output": True, "text": True, "cwd": "/"}
        if owner is not None:
            kwargs.update(user=owner.pw_uid, group=owner.pw_gid, extra_groups=[])
            kwargs["env"] = {**os.environ, "HOME": owner.pw_dir, "USER": owner.pw_name}
        return subprocess.run(cmd, **kwargs)

    def _prepare_dir(self, path: Path, mode: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
        self._chown(path)
        owner = self._owner()
        if owner is not None:
            _make_traversable(path.parent, owner)

    def _chown(self, path: Path) -> None:
        owner = self._owner()
        if owner is not None:
            os.chown(path, owner.pw_uid, owner.pw_gid)


def _make_traversable(path: Path, owner: pwd.struct_passwd) -> None:
    """Let *owner* reach *path*: add the search (x) bit where an ancestor denies it.

    Only root gets here. A clone in ``mktemp -d`` (mode 0700) would otherwise hide
    the data directory from the server's own user.
    """
    groups = {owner.pw_gid} | {g for g in os.getgrouplist(owner.pw_name, owner.pw_gid)}
    for folder in [path, *path.parents]:
        st = folder.stat()
        if st.st_uid == owner.pw_uid:
            needed = stat.S_IXUSR
        elif st.st_gid in groups:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not st.st_mode & needed:
            print(
                f"geogrid: allowing user {owner.pw_name} to pass through {folder} (chmod +x)",
                file=sys.stderr,
            )
            os.chmod(folder, stat.S_IMODE(st.st_mode) | needed)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
