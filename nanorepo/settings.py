"""Settings, read once from the environment into a frozen object.

Nothing else in nanorepo reads ``os.environ``: code receives a :class:`Settings`.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from nanorepo.errors import ConfigurationError

__all__ = ["Settings"]


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer setting within ``[low, high]``; a clear error for anything else."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigurationError(
            f"{name}={raw!r} is not a whole number from {low} to {high}",
            hint=f"unset it for the default ({default}) or give a number in that range",
        )
    return value


@dataclass(frozen=True)
class Settings:
    """Where the repository lives and who is acting.

    Attributes
    ----------
    home:
        Repository home (``NANOREPO_HOME``, default ``~/.nanorepo``): catalog, storage, staging.
    database_url:
        SQLAlchemy URL of the catalog (``NANOREPO_DATABASE_URL``); default SQLite in ``home``.
    storage:
        Root of the repository storage (``NANOREPO_STORAGE``, default ``home/storage``).
    staging:
        Where deposits are assembled before atomic publication (``home/staging``); must be on
        the same filesystem as ``storage`` for publication to be a rename.
    keep_originals:
        Keep the files as deposited next to the conversion (``NANOREPO_KEEP_ORIGINALS``).
    user:
        Acting identity (``NANOREPO_USER``, ``JUPYTERHUB_USER``, else the login name).
    url, token:
        Service URL and token for remote access (``NANOREPO_URL``, ``NANOREPO_TOKEN`` or
        ``JUPYTERHUB_API_TOKEN``).
    allowed_roots:
        Directories deposits may be read from (``NANOREPO_ALLOWED_ROOTS``, ``os.pathsep``
        separated); empty means anywhere the caller can read (single-user CLI).
    allow_anonymous:
        Whether the service shows public data to requests without a token
        (``NANOREPO_ALLOW_ANONYMOUS``, default on).
    cors_origins:
        Origins allowed to read the service from a browser on another site, e.g. a remote
        viewer (``NANOREPO_CORS_ORIGINS``, space or comma separated; default none).
    public_url:
        The address the service is reached at from outside (``NANOREPO_PUBLIC_URL``, e.g.
        ``https://hub.example.org/services/nanorepo``): the base of identifiers in exports
        (W3C annotations, PROV, RO-Crate). Never taken from a request's ``Host`` header,
        which the caller chooses; unset, exports use ``urn:nanorepo:`` identifiers.
    max_body_bytes:
        Largest request body of any route but the streamed uploads, in bytes
        (``NANOREPO_MAX_BODY_BYTES``, default 4 MiB); larger bodies get 413 while they
        stream in, before they are buffered.
    render_budget_ms:
        Most CPU time one annotation post may take to render, in milliseconds
        (``NANOREPO_RENDER_BUDGET_MS``, default 1000): a longer render is cut off with 422.
    costly_per_minute:
        Costly requests (long posts, imports, metadata edits, deposits) one client may make
        a minute (``NANOREPO_COSTLY_PER_MINUTE``, default 30); more get 429 with
        ``Retry-After``.
    costly_slots:
        Costly requests of one kind the service works on at once
        (``NANOREPO_COSTLY_SLOTS``, default 0: one per CPU core); more get 503 at once.
    hub_cache_s:
        How long a hub's answer about a token (owner, groups, admin) is reused, in seconds
        (``NANOREPO_HUB_CACHE_S``, default 20, at most 30): the bound on how long a revoked
        token or a removed admin keeps working.
    service_prefix:
        URL prefix the service is mounted under (``JUPYTERHUB_SERVICE_PREFIX`` when the hub
        runs it, else ``/``).
    hub_api_url, hub_api_token:
        Set when running as a JupyterHub service (``JUPYTERHUB_API_URL``,
        ``JUPYTERHUB_API_TOKEN`` of the service): identities then come from the hub.
    failpoint:
        Crash-test hook (``NANOREPO_FAILPOINT``): the process kills itself with SIGKILL when
        it reaches the named point of a deposit, so tests can prove crash safety at exactly
        the moments that matter. Never set in production.
    run_journal:
        Set by ``nanorepo run`` for the kernel it starts (``NANOREPO_RUN_JOURNAL``): the file
        ``nanorepo.open`` and ``nanorepo.record`` append what the notebook opened and
        recorded to, so the run's provenance record lists its real inputs.
    container_image:
        The container image this process runs in, when known (``NANOREPO_IMAGE``, else
        ``JUPYTER_IMAGE_SPEC`` / ``JUPYTER_IMAGE`` as KubeSpawner sets them); recorded in
        every run's environment.
    home_set:
        Whether the home was chosen (``NANOREPO_HOME`` or an explicit ``home``) rather than
        defaulted; the front door (:mod:`nanorepo.connection`) then looks only there.
    metadata_max_chars:
        Longest string (characters) a field of a deposit's sealed metadata may hold
        (``NANOREPO_METADATA_MAX_CHARS``, default 65,536): sealed metadata can never be
        edited in place, so a 20 MB paste is refused, not sealed.
    metadata_max_depth:
        Deepest nesting of a deposit metadata file (``NANOREPO_METADATA_MAX_DEPTH``,
        default 32 levels).
    metadata_max_bytes:
        Largest deposit metadata file (``NANOREPO_METADATA_MAX_BYTES``, default 1 MiB).
    run_pins:
        Dataset versions a re-run must use (``NANOREPO_RUN_PINS``, ``S-NANO1@v1 ...``): a bare
        accession opened by the notebook resolves to its pinned version, not the latest.
    """

    home: Path
    database_url: str
    storage: Path
    staging: Path
    keep_originals: bool = True
    user: str = "anonymous"
    url: str | None = None
    token: str | None = None
    allowed_roots: tuple[Path, ...] = ()
    allow_anonymous: bool = True
    cors_origins: tuple[str, ...] = ()
    public_url: str | None = None
    max_body_bytes: int = 4 << 20
    hub_cache_s: int = 20
    render_budget_ms: int = 1000
    costly_per_minute: int = 30
    costly_slots: int = 0
    service_prefix: str = "/"
    hub_api_url: str | None = None
    hub_api_token: str | None = None
    failpoint: str | None = None
    run_journal: Path | None = None
    run_pins: tuple[str, ...] = ()
    container_image: str | None = None
    home_set: bool = False
    metadata_max_chars: int = 65_536
    metadata_max_depth: int = 32
    metadata_max_bytes: int = 1 << 20

    @classmethod
    def from_env(
        cls, home: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Read the settings from ``env`` (default ``os.environ``); ``home`` overrides."""
        env = os.environ if env is None else env
        home_path = Path(home or env.get("NANOREPO_HOME") or "~/.nanorepo").expanduser().resolve()
        storage = Path(env.get("NANOREPO_STORAGE") or home_path / "storage").expanduser()
        db = env.get("NANOREPO_DATABASE_URL") or f"sqlite:///{home_path / 'catalog.sqlite'}"
        try:
            login = getpass.getuser()
        except Exception:  # no passwd entry in some containers
            login = "anonymous"
        roots = tuple(
            Path(p).expanduser().resolve()
            for p in (env.get("NANOREPO_ALLOWED_ROOTS") or "").split(os.pathsep)
            if p
        )
        return cls(
            home=home_path,
            database_url=db,
            storage=storage.resolve(),
            staging=(home_path / "staging").resolve(),
            keep_originals=_flag(env.get("NANOREPO_KEEP_ORIGINALS"), True),
            user=env.get("NANOREPO_USER") or env.get("JUPYTERHUB_USER") or login,
            url=env.get("NANOREPO_URL") or None,
            token=env.get("NANOREPO_TOKEN") or env.get("JUPYTERHUB_API_TOKEN") or None,
            allowed_roots=roots,
            allow_anonymous=_flag(env.get("NANOREPO_ALLOW_ANONYMOUS"), True),
            cors_origins=tuple(
                o for o in (env.get("NANOREPO_CORS_ORIGINS") or "").replace(",", " ").split() if o
            ),
            public_url=(env.get("NANOREPO_PUBLIC_URL") or "").rstrip("/") or None,
            max_body_bytes=_int(env, "NANOREPO_MAX_BODY_BYTES", 4 << 20, 1024, 1 << 40),
            hub_cache_s=_int(env, "NANOREPO_HUB_CACHE_S", 20, 0, 30),
            render_budget_ms=_int(env, "NANOREPO_RENDER_BUDGET_MS", 1000, 50, 60_000),
            costly_per_minute=_int(env, "NANOREPO_COSTLY_PER_MINUTE", 30, 1, 1_000_000),
            costly_slots=_int(env, "NANOREPO_COSTLY_SLOTS", 0, 0, 1024),
            service_prefix=env.get("JUPYTERHUB_SERVICE_PREFIX") or "/",
            hub_api_url=env.get("JUPYTERHUB_API_URL") or None,
            hub_api_token=(
                env.get("JUPYTERHUB_API_TOKEN") if env.get("JUPYTERHUB_SERVICE_NAME") else None
            ),
            failpoint=env.get("NANOREPO_FAILPOINT") or None,
            run_journal=Path(env["NANOREPO_RUN_JOURNAL"])
            if env.get("NANOREPO_RUN_JOURNAL")
            else None,
            run_pins=tuple((env.get("NANOREPO_RUN_PINS") or "").replace(",", " ").split()),
            container_image=env.get("NANOREPO_IMAGE")
            or env.get("JUPYTER_IMAGE_SPEC")
            or env.get("JUPYTER_IMAGE")
            or None,
            home_set=bool(home or env.get("NANOREPO_HOME")),
            metadata_max_chars=_int(env, "NANOREPO_METADATA_MAX_CHARS", 65_536, 1, 1 << 30),
            metadata_max_depth=_int(env, "NANOREPO_METADATA_MAX_DEPTH", 32, 4, 256),
            metadata_max_bytes=_int(env, "NANOREPO_METADATA_MAX_BYTES", 1 << 20, 1024, 1 << 30),
        )

    def to_env(self) -> dict[str, str]:
        """The ``NANOREPO_*`` variables that give a child process (a kernel, a service) these
        settings; identity and service fields only where set."""
        env = {
            "NANOREPO_HOME": str(self.home),
            "NANOREPO_DATABASE_URL": self.database_url,
            "NANOREPO_STORAGE": str(self.storage),
            "NANOREPO_USER": self.user,
            "NANOREPO_KEEP_ORIGINALS": "1" if self.keep_originals else "0",
            "NANOREPO_ALLOW_ANONYMOUS": "1" if self.allow_anonymous else "0",
            "NANOREPO_CORS_ORIGINS": " ".join(self.cors_origins),
            "NANOREPO_ALLOWED_ROOTS": os.pathsep.join(str(p) for p in self.allowed_roots),
            "NANOREPO_MAX_BODY_BYTES": str(self.max_body_bytes),
            "NANOREPO_HUB_CACHE_S": str(self.hub_cache_s),
            "NANOREPO_RENDER_BUDGET_MS": str(self.render_budget_ms),
            "NANOREPO_COSTLY_PER_MINUTE": str(self.costly_per_minute),
            "NANOREPO_COSTLY_SLOTS": str(self.costly_slots),
        }
        if self.public_url:
            env["NANOREPO_PUBLIC_URL"] = self.public_url
        if self.url:
            env["NANOREPO_URL"] = self.url
        if self.token:
            env["NANOREPO_TOKEN"] = self.token
        if self.container_image:
            env["NANOREPO_IMAGE"] = self.container_image
        return env

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]
