"""Settings, read once from ``GEOGRID_*`` environment variables and validated."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from geogrid.errors import ConfigError

DEFAULT_LEVELS = ("township", "village", "grid", "cell")
#: Grid code schemes: digits each level adds after the 6-digit division code (None: plain).
CODE_SCHEMES = {"plain": None, "beijing": (3, 3, 3), "cjt213": (3, 3, 2)}
DIVISION_DIGITS = 6


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything geogrid can be configured with.

    Build it with :meth:`from_env` (the CLI and the server do) or directly in tests;
    nothing reads the environment after that.
    """

    #: Folder for the embedded cluster (``pg/``), its socket and the app's secret key.
    home: Path = Path("var")
    #: Any PostGIS to use instead of the embedded cluster; then nothing is started.
    database_url: str | None = None
    #: Grid level names, from the top of the hierarchy down.
    levels: tuple[str, ...] = DEFAULT_LEVELS
    #: Signs session cookies; generated once under ``home`` when not given.
    secret_key: str | None = None
    #: Largest request body the API accepts (bytes); larger gets 413.
    max_upload_bytes: int = 50 * 1024 * 1024
    #: Abort any single SQL statement after this long (ms); 0 disables.
    statement_timeout_ms: int = 60_000
    #: Zone for naive timestamps, and the one pages show times in.
    timezone: str = "Asia/Shanghai"
    #: Language of pages and API messages when neither the user nor the browser says
    #: (``zh_CN`` Simplified Chinese, ``en`` English).
    language: str = "zh_CN"
    #: Projected CRS for metres (areas, buffers, tolerances); None picks the UTM zone
    #: of the data. E.g. 4547 for CGCS2000 / 3-degree Gauss-Kruger CM 114E.
    metric_srid: int | None = None
    #: A gap or overlap narrower than this everywhere is a sliver, not a problem, however
    #: long (m): reprojection bends straight edges by centimetres. Also how far a child's
    #: edge may be snapped onto its parent's boundary (``grids import --snap-to-parent``).
    tolerance_m: float = 0.1
    #: Smaller pieces are not worth showing or counting: uncovered parts on the coverage
    #: map, the share of a child that a split line cuts off (m²).
    sliver_m2: float = 1.0
    #: Digits a grid adds to its parent's code (130102001 -> 130102001003).
    code_width: int = 3
    #: ``plain`` (parent + code_width digits), ``beijing`` (15 digits: 6+3+3+3) or ``cjt213``
    #: (14: 6+3+3+2), see geogrid.grids.codes; a scheme codes as many levels as it has segments.
    code_scheme: str = "plain"
    #: Largest number of vertices one boundary may have (bounds work before GEOS sees it).
    max_vertices: int = 200_000
    #: An incident this close (m) to a cell but outside every cell is snapped to it.
    snap_m: float = 50.0
    #: JSON file with the incident categories and their deadlines (default: built in).
    categories_file: Path | None = None
    #: Patrol fixes with a worse reported accuracy than this (m) are dropped.
    max_accuracy_m: float = 50.0
    #: A fix implying a faster move than this from the last kept one (m/s) is a GPS jump.
    max_speed_mps: float = 15.0
    #: A pause longer than this between fixes (s) starts a new track.
    track_gap_s: float = 600.0
    #: A worker sees this far (m) either side of their track: what a patrol covers.
    sight_m: float = 30.0
    #: Time outside a cell (s) after which coming back is a new visit.
    visit_gap_s: float = 1800.0
    #: The patrol rule (一日双巡): visits a day, hours between them, share of the cell each covers.
    rule_visits: int = 2
    rule_hours_apart: float = 4.0
    rule_min_fraction: float = 0.6
    #: Folder of the map pages' third-party JS/CSS (``npm ci`` in ``web/``, run by make).
    assets_dir: Path = Path(__file__).resolve().parent.parent / "web" / "node_modules"
    #: Map background: ``none``, an XYZ tile URL template with {z}/{x}/{y}
    #: (OpenStreetMap, Tianditu, a local tile server), or a folder of z/x/y.png tiles.
    basemap: str = "none"
    #: Attribution shown for an XYZ basemap (its licence usually requires one).
    basemap_attribution: str = ""
    #: The ranking's weights (综合评价), rate name -> weight; see docs/kpis.md.
    kpi_weights: tuple[tuple[str, float], ...] = (("closure_rate", 30), ("on_time_rate", 30),
                                                  ("satisfaction_rate", 20), ("rework_rate", 10),
                                                  ("extension_rate", 10))  # fmt: skip
    #: Units with fewer due cases than this are listed but not ranked.
    kpi_min_cases: int = 5
    #: 补签: how many repaired patrols (pending or approved) a worker may ask for in a calendar month.
    repair_limit: int = 3
    #: Photos (of a case or a 补签): the largest file accepted, and how many one case or request may carry.
    photo_max_bytes: int = 10 * 1024 * 1024
    photos_per_item: int = 9
    #: Seconds after an upload of tracks before the days it touched are brought up to date in the background
    #: (uploads in between are taken together); 0: only when a page asks.
    refresh_s: float = 30.0
    #: Layers with more features than this are served as vector tiles, not embedded.
    tile_threshold: int = 3000
    #: A page session ends this long after sign-in, whatever happens (hours) ...
    session_hours: float = 12.0
    #: ... or after this long without a request (minutes).
    session_idle_minutes: float = 60.0
    #: The app is reached over HTTPS (itself or through a TLS proxy): cookies are Secure.
    tls: bool = False
    #: Proxies in front of the app whose X-Forwarded-For/-Proto/-Host are trusted (0: none).
    proxy_hops: int = 0
    #: Failed sign-ins of one user name, and from one address, within the window before
    #: further attempts are refused (429) until the window has passed.
    login_failures: int = 5
    login_address_failures: int = 20
    login_window_s: float = 900.0
    #: Where `geogrid serve` listens.
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int = 8
    #: Waitress processes sharing the socket (Python uses about one core per process).
    processes: int = min(os.cpu_count() or 1, 4)

    def __post_init__(self) -> None:
        levels = tuple(level.strip() for level in self.levels)
        if not levels or any(not level for level in levels):
            raise ConfigError("GEOGRID_LEVELS must name at least one level, e.g. 'township,village'")
        if len(set(levels)) != len(levels):
            raise ConfigError("GEOGRID_LEVELS names a level twice: {levels}", levels=",".join(levels))
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "home", Path(self.home).absolute())
        if self.max_upload_bytes <= 0:
            raise ConfigError("GEOGRID_MAX_UPLOAD_BYTES must be positive")
        if self.statement_timeout_ms < 0:
            raise ConfigError("GEOGRID_STATEMENT_TIMEOUT_MS must be 0 or more")
        if self.sliver_m2 < 0:
            raise ConfigError("GEOGRID_SLIVER_M2 must be 0 or more")
        if not 0 <= self.tolerance_m <= 100:
            raise ConfigError("GEOGRID_TOLERANCE_M must be between 0 and 100 metres")
        if not 0 <= self.snap_m <= 10_000:
            raise ConfigError("GEOGRID_SNAP_M must be between 0 and 10000 metres")
        if self.max_accuracy_m <= 0 or self.max_speed_mps <= 0 or self.track_gap_s <= 0:
            raise ConfigError("GEOGRID_MAX_ACCURACY_M, GEOGRID_MAX_SPEED_MPS and GEOGRID_TRACK_GAP_S must be positive")
        if self.sight_m <= 0 or self.visit_gap_s <= 0 or self.rule_visits < 1 or not 0 < self.rule_min_fraction <= 1:
            raise ConfigError(
                "patrol settings: sight and visit gap must be positive, the rule needs a visit and a fraction in (0, 1]"
            )
        if not 1 <= self.code_width <= 6:
            raise ConfigError("GEOGRID_CODE_WIDTH must be between 1 and 6")
        known_rates = ("acceptance_rate", "dispatch_rate", "closure_rate", "on_time_rate", "rework_rate",
                       "extension_rate", "handling_rate", "satisfaction_rate", "completion_rate")  # fmt: skip
        weights = tuple((str(k), float(w)) for k, w in self.kpi_weights)
        if not weights or any(k not in known_rates or w < 0 for k, w in weights) or sum(w for _, w in weights) <= 0:
            raise ConfigError("GEOGRID_KPI_WEIGHTS is rate=weight,... with rates among {known} and weights 0 or "
                              "more, not all 0", known=", ".join(known_rates))  # fmt: skip
        object.__setattr__(self, "kpi_weights", weights)
        if self.kpi_min_cases < 0:
            raise ConfigError("GEOGRID_KPI_MIN_CASES must be 0 or more")
        if self.repair_limit < 0:
            raise ConfigError("GEOGRID_REPAIR_LIMIT must be 0 or more")
        if self.refresh_s < 0:
            raise ConfigError("GEOGRID_REFRESH_S must be 0 or more")
        if self.photo_max_bytes <= 0 or self.photos_per_item < 1:
            raise ConfigError("GEOGRID_PHOTO_MAX_BYTES and GEOGRID_PHOTOS_PER_ITEM must be 1 or more")
        if self.code_scheme not in CODE_SCHEMES:
            raise ConfigError("GEOGRID_CODE_SCHEME must be plain, beijing or cjt213, not {scheme!r}",
                              scheme=self.code_scheme)  # fmt: skip
        segments = CODE_SCHEMES[self.code_scheme]
        if segments is not None and len(levels) > len(segments):
            raise ConfigError(
                "the {scheme} code scheme codes {n} levels (street/township, community/village, unit grid) but "
                "GEOGRID_LEVELS has {count}: {levels}",
                scheme=self.code_scheme, n=len(segments), count=len(levels), levels=",".join(levels),
            )  # fmt: skip
        if self.tile_threshold < 0:
            raise ConfigError("GEOGRID_TILE_THRESHOLD must be 0 or more")
        if not 1 <= self.threads <= 1000 or not 1 <= self.processes <= 64:
            raise ConfigError("GEOGRID_THREADS must be 1..1000 and GEOGRID_PROCESSES 1..64")
        object.__setattr__(self, "assets_dir", Path(self.assets_dir).absolute())
        basemap = self.basemap.strip()
        if basemap.lower() in ("", "none"):
            basemap = "none"
        elif "://" in basemap:
            if not basemap.startswith(("http://", "https://")) or not all(k in basemap for k in ("{z}", "{x}", "{y}")):
                raise ConfigError(
                    "GEOGRID_BASEMAP {basemap!r}: an XYZ URL must be http(s) and contain {{z}}, {{x}} and {{y}}",
                    basemap=basemap,
                )
        elif not Path(basemap).is_dir():
            raise ConfigError(
                "GEOGRID_BASEMAP {basemap!r} is neither 'none', an XYZ URL template nor a tile folder", basemap=basemap
            )
        object.__setattr__(self, "basemap", basemap)
        if self.session_hours <= 0 or self.session_idle_minutes <= 0:
            raise ConfigError("GEOGRID_SESSION_HOURS and GEOGRID_SESSION_IDLE_MINUTES must be positive")
        if not 0 <= self.proxy_hops <= 10:
            raise ConfigError("GEOGRID_PROXY_HOPS must be between 0 and 10")
        if self.login_failures < 1 or self.login_address_failures < 1 or self.login_window_s <= 0:
            raise ConfigError("GEOGRID_LOGIN_FAILURES, GEOGRID_LOGIN_ADDRESS_FAILURES and GEOGRID_LOGIN_WINDOW_S "
                              "must be positive")  # fmt: skip
        language = {"zh": "zh_CN", "zh-cn": "zh_CN", "zh_cn": "zh_CN", "en": "en", "en-us": "en", "en_us": "en"}.get(
            self.language.strip().lower())  # fmt: skip
        if language is None:
            raise ConfigError("GEOGRID_LANGUAGE must be zh_CN or en, not {language!r}", language=self.language)
        object.__setattr__(self, "language", language)
        if not 0 < self.port < 65536:
            raise ConfigError("GEOGRID_PORT must be a TCP port, not {port}", port=self.port)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Read ``GEOGRID_*`` variables from *environ* (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        values: dict = {}
        if "GEOGRID_HOME" in env:
            values["home"] = Path(env["GEOGRID_HOME"])
        if env.get("GEOGRID_DATABASE_URL"):
            values["database_url"] = env["GEOGRID_DATABASE_URL"]
        if "GEOGRID_LEVELS" in env:
            values["levels"] = tuple(env["GEOGRID_LEVELS"].split(","))
        if env.get("GEOGRID_SECRET_KEY"):
            values["secret_key"] = env["GEOGRID_SECRET_KEY"]
        if "GEOGRID_TIMEZONE" in env:
            values["timezone"] = env["GEOGRID_TIMEZONE"]
        if env.get("GEOGRID_LANGUAGE"):
            values["language"] = env["GEOGRID_LANGUAGE"]
        if env.get("GEOGRID_KPI_WEIGHTS"):
            try:
                values["kpi_weights"] = tuple(
                    (k.strip(), float(w))
                    for k, w in (part.split("=", 1) for part in env["GEOGRID_KPI_WEIGHTS"].split(","))
                )
            except ValueError as exc:
                raise ConfigError("GEOGRID_KPI_WEIGHTS is rate=weight,..., not {value!r}",
                                  value=env["GEOGRID_KPI_WEIGHTS"]) from exc  # fmt: skip
        if env.get("GEOGRID_CODE_SCHEME"):
            values["code_scheme"] = env["GEOGRID_CODE_SCHEME"].strip().lower()
        if env.get("GEOGRID_ASSETS_DIR"):
            values["assets_dir"] = Path(env["GEOGRID_ASSETS_DIR"])
        if "GEOGRID_BASEMAP" in env:
            values["basemap"] = env["GEOGRID_BASEMAP"]
        if "GEOGRID_BASEMAP_ATTRIBUTION" in env:
            values["basemap_attribution"] = env["GEOGRID_BASEMAP_ATTRIBUTION"]
        if "GEOGRID_HOST" in env:
            values["host"] = env["GEOGRID_HOST"]
        for key, name in [
            ("max_upload_bytes", "GEOGRID_MAX_UPLOAD_BYTES"),
            ("statement_timeout_ms", "GEOGRID_STATEMENT_TIMEOUT_MS"),
            ("port", "GEOGRID_PORT"),
            ("threads", "GEOGRID_THREADS"),
            ("processes", "GEOGRID_PROCESSES"),
            ("code_width", "GEOGRID_CODE_WIDTH"),
            ("max_vertices", "GEOGRID_MAX_VERTICES"),
            ("metric_srid", "GEOGRID_METRIC_SRID"),
            ("rule_visits", "GEOGRID_RULE_VISITS"),
            ("tile_threshold", "GEOGRID_TILE_THRESHOLD"),
            ("proxy_hops", "GEOGRID_PROXY_HOPS"),
            ("login_failures", "GEOGRID_LOGIN_FAILURES"),
            ("login_address_failures", "GEOGRID_LOGIN_ADDRESS_FAILURES"),
            ("kpi_min_cases", "GEOGRID_KPI_MIN_CASES"),
            ("repair_limit", "GEOGRID_REPAIR_LIMIT"),
            ("photo_max_bytes", "GEOGRID_PHOTO_MAX_BYTES"),
            ("photos_per_item", "GEOGRID_PHOTOS_PER_ITEM"),
        ]:
            if name in env:
                values[key] = _int(name, env[name])
        if "GEOGRID_SNAP_M" in env:
            values["snap_m"] = _float("GEOGRID_SNAP_M", env["GEOGRID_SNAP_M"])
        if env.get("GEOGRID_CATEGORIES"):
            values["categories_file"] = Path(env["GEOGRID_CATEGORIES"])
        for key, name in [("max_accuracy_m", "GEOGRID_MAX_ACCURACY_M"), ("max_speed_mps", "GEOGRID_MAX_SPEED_MPS"),
                          ("track_gap_s", "GEOGRID_TRACK_GAP_S"), ("sight_m", "GEOGRID_SIGHT_M"),
                          ("visit_gap_s", "GEOGRID_VISIT_GAP_S"), ("rule_hours_apart", "GEOGRID_RULE_HOURS_APART"),
                          ("rule_min_fraction", "GEOGRID_RULE_MIN_FRACTION"),
                          ("session_hours", "GEOGRID_SESSION_HOURS"),
                          ("session_idle_minutes", "GEOGRID_SESSION_IDLE_MINUTES"),
                          ("login_window_s", "GEOGRID_LOGIN_WINDOW_S"),
                          ("refresh_s", "GEOGRID_REFRESH_S")]:  # fmt: skip
            if name in env:
                values[key] = _float(name, env[name])
        if "GEOGRID_TLS" in env:
            values["tls"] = _bool("GEOGRID_TLS", env["GEOGRID_TLS"])
        if "GEOGRID_TOLERANCE_M" in env:
            values["tolerance_m"] = _float("GEOGRID_TOLERANCE_M", env["GEOGRID_TOLERANCE_M"])
        if "GEOGRID_SLIVER_M2" in env:
            values["sliver_m2"] = _float("GEOGRID_SLIVER_M2", env["GEOGRID_SLIVER_M2"])
        values.update(overrides)
        return cls(**values)

    def resolved_secret_key(self) -> str:
        """The configured secret key, or one generated once and kept in ``home``."""
        if self.secret_key:
            return self.secret_key
        path = self.home / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.home.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key


def _bool(name: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError("{name} must be true or false, not {raw!r}", name=name, raw=raw)


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError("{name} must be a number, not {raw!r}", name=name, raw=raw) from None


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError("{name} must be an integer, not {raw!r}", name=name, raw=raw) from None
