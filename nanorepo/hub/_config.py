"""The nanorepo pieces of a JupyterHub, as one traitlets-configurable object.

:class:`NanorepoHub` holds every setting the hub side of nanorepo needs (traits, set as
``c.NanorepoHub.<name>`` in a ``jupyterhub_config.py``) and :func:`configure` applies them
to a hub's configuration: the nanorepo service, the idle culler, the roles, the spawn
hook and the server profiles. The same pieces serve the embedded hub of ``nanorepo up``
(:func:`nanorepo.hub.configure_local`) and the Kubernetes chart (whose ``extraConfig``
calls :func:`configure` after setting the ``kube_*`` traits). traitlets is what
JupyterHub itself is configured with, so these settings sit, are documented and are
validated exactly like the hub's own (``jupyterhub --help-all`` style).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from traitlets import Bool, Dict, Enum, Int, List, Unicode, validate
from traitlets.config import Config, LoggingConfigurable

from nanorepo.errors import ConfigurationError
from nanorepo.settings import Settings

__all__ = ["DEFAULT_PROFILES", "SERVER_SCOPES", "NanorepoHub", "configure"]

#: Server sizes offered at spawn (``mem_limit`` as JupyterHub's ByteSpecification).
DEFAULT_PROFILES: list[dict[str, Any]] = [
    {
        "slug": "small",
        "display_name": "Small: 1 CPU, 4 GB",
        "description": "Notebooks, browsing datasets, reading regions.",
        "cpu_limit": 1.0,
        "mem_limit": "4G",
        "default": True,
    },
    {
        "slug": "large",
        "display_name": "Large: 4 CPUs, 16 GB",
        "description": "Dask analyses over whole images and datasets.",
        "cpu_limit": 4.0,
        "mem_limit": "16G",
    },
]

#: Scopes of a user server's own token ($JUPYTERHUB_API_TOKEN, the ``server`` role), on
#: top of the hub's defaults: enough for its kernels to call the service as their user
#: (who they are, their groups for group grants, whether they are a hub admin).
SERVER_SCOPES = ["users:activity!user", "access:servers!server", "read:users!user"]

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


class NanorepoHub(LoggingConfigurable):
    """The hub side of nanorepo: service, culler, roles, storage views, profiles."""

    # -- the repository ------------------------------------------------------------------

    home = Unicode(
        "",
        help="""Repository home (NANOREPO_HOME of the service): catalog (SQLite by default),
        storage and staging live here unless database_url / storage say otherwise.
        Required when the hub runs the service (service_command) or builds local views.""",
    ).tag(config=True)

    database_url = Unicode(
        "",
        help="""SQLAlchemy URL of the catalog (default: SQLite in `home`). The hub reads the
        grants from it at every server start, so on Kubernetes it must reach the database
        (PostgreSQL).""",
    ).tag(config=True)

    storage = Unicode(
        "",
        help="""Root of the repository storage as the hub sees it (default `home`/storage):
        the target of the local views' links.""",
    ).tag(config=True)

    # -- the service ---------------------------------------------------------------------

    service_name = Unicode(
        "nanorepo",
        help="""Name of the service in the hub: it is reached at /services/<name>/ and users
        need the scope access:services!service=<name>.""",
    ).tag(config=True)

    service_url = Unicode(
        "http://127.0.0.1:8090",
        help="""Where the hub's proxy reaches the service (scheme, host, port; no path).
        A managed service listens there.""",
    ).tag(config=True)

    service_command = List(
        Unicode(),
        default_value=[sys.executable, "-m", "nanorepo", "serve"],
        help="""Command of the service when the hub runs it (a managed service, Hub OAuth).
        Empty: the service runs elsewhere (a Kubernetes Deployment) and is only
        registered, with its api_token given in the hub's own services config.""",
    ).tag(config=True)

    service_environment = Dict(
        {},
        help="""Extra environment of the managed service (e.g. NANOREPO_CORS_ORIGINS).""",
    ).tag(config=True)

    allow_anonymous = Bool(
        True,
        help="""Whether the service shows public datasets to requests without credentials
        (an open repository). Off: everything needs a hub login or token.""",
    ).tag(config=True)

    server_service_url = Unicode(
        "",
        help="""The service's URL as user servers reach it (their NANOREPO_URL), with the
        /services/<name> prefix. Default: service_url + /services/<name>, i.e. straight to
        the service without the proxy (on Kubernetes: the service's cluster address).""",
    ).tag(config=True)

    all_users_use_service = Bool(
        True,
        help="""Give every hub user the scope to use the service (access:services!service=
        <name>, through the hub's default `user` role). Off: give it with roles of your
        own, e.g. to some groups only; users without it are refused by the service.""",
    ).tag(config=True)

    server_scopes = List(
        Unicode(),
        default_value=SERVER_SCOPES,
        help="""Scopes of the `server` role (the user servers' own tokens, which kernels use
        as JUPYTERHUB_API_TOKEN); access:services!service=<name> is always added. A token
        gets only the scopes its user holds.""",
    ).tag(config=True)

    propagate_env = List(
        Unicode(),
        default_value=["NANOREPO_PROCESS_MARK"],
        help="""Environment variables of the hub passed on to the managed service, the idle
        culler and every user server, when set. `nanorepo up` marks every process it
        starts with NANOREPO_PROCESS_MARK, to find and stop anything left behind.""",
    ).tag(config=True)

    # -- the idle culler -----------------------------------------------------------------

    cull_idle = Bool(
        True, help="""Run jupyterhub-idle-culler as a hub service to stop idle servers."""
    ).tag(config=True)

    cull_timeout = Int(
        3600, help="""Seconds without activity after which a user server is stopped."""
    ).tag(config=True)

    cull_every = Int(300, help="""Seconds between two looks of the culler at the servers.""").tag(
        config=True
    )

    # -- user servers --------------------------------------------------------------------

    storage_mode = Enum(
        ["auto", "links", "kubernetes"],
        "auto",
        help="""How a server gets its storage view. `links`: a per-user directory of links
        under views_dir (local; not a security boundary). `kubernetes`: KubeSpawner
        volume mounts, readOnly (kube_* settings). `auto`: kubernetes when the spawner has
        volume_mounts (KubeSpawner), else links.""",
    ).tag(config=True)

    views_dir = Unicode(
        "", help="""Where the local views are made (default `home`/views/<user>)."""
    ).tag(config=True)

    kube_volume = Dict(
        {
            "name": "nanorepo-storage",
            "persistentVolumeClaim": {"claimName": "nanorepo-storage", "readOnly": True},
        },
        help="""The Kubernetes volume (a pod `volumes` entry) holding the repository
        storage; user pods mount parts of it read-only.""",
    ).tag(config=True)

    kube_storage_subpath = Unicode(
        "", help="""Where the storage root lies inside kube_volume ("" for its root)."""
    ).tag(config=True)

    kube_mount_path = Unicode(
        "/srv/nanorepo/storage",
        help="""Where the view appears in user pods (their NANOREPO_STORAGE).""",
    ).tag(config=True)

    profiles = List(
        Dict(),
        default_value=DEFAULT_PROFILES,
        help="""Server sizes users choose from at spawn: dicts with slug, display_name,
        description, cpu_limit, mem_limit and optionally default (one may be). Local
        spawners get an options form (limits exported as CPU_LIMIT / MEM_LIMIT, which
        nanorepo.compute sizes Dask by); KubeSpawner gets them as profile_list.""",
    ).tag(config=True)

    @validate("profiles")
    def _check_profiles(self, proposal: Any) -> list[dict[str, Any]]:
        profiles: list[dict[str, Any]] = proposal["value"]
        slugs = [p.get("slug") for p in profiles]
        for p in profiles:
            slug = p.get("slug")
            if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
                raise ConfigurationError(
                    f"NanorepoHub.profiles: {slug!r} is not a profile slug",
                    hint="slugs are 1-32 of a-z 0-9 _ -, starting with a letter or digit",
                )
            if not p.get("display_name"):
                raise ConfigurationError(f"NanorepoHub.profiles: {slug!r} needs a display_name")
        if len(set(slugs)) != len(slugs) or sum(bool(p.get("default")) for p in profiles) > 1:
            raise ConfigurationError(
                "NanorepoHub.profiles: slugs must be unique and at most one profile the default"
            )
        return profiles

    # -- derived values ------------------------------------------------------------------

    def settings(self) -> Settings:
        """The repository settings the hub side uses (catalog and storage)."""
        if not self.home:
            raise ConfigurationError(
                "NanorepoHub.home is not set",
                hint="set c.NanorepoHub.home to the repository home (NANOREPO_HOME)",
            )
        env = {"NANOREPO_DATABASE_URL": self.database_url, "NANOREPO_STORAGE": self.storage}
        return Settings.from_env(self.home, env={k: v for k, v in env.items() if v})

    def servers_url(self) -> str:
        """NANOREPO_URL of user servers."""
        return self.server_service_url or (
            f"{self.service_url.rstrip('/')}/services/{self.service_name}"
        )

    def propagated(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The propagate_env variables set in ``environ`` (default: this process)."""
        environ = os.environ if environ is None else environ
        return {k: environ[k] for k in self.propagate_env if k in environ}

    def service(self) -> dict[str, Any]:
        """The nanorepo entry of ``JupyterHub.services``."""
        spec: dict[str, Any] = {
            "name": self.service_name,
            "url": self.service_url,
            "display": True,
            "oauth_no_confirm": True,
            "info": {"description": "nanorepo: reference data for nanoscopy (REST API)"},
        }
        if self.service_command:
            s = self.settings()
            spec["command"] = list(self.service_command)
            spec["environment"] = {
                **self.propagated(),
                "NANOREPO_HOME": str(s.home),
                "NANOREPO_DATABASE_URL": s.database_url,
                "NANOREPO_STORAGE": str(s.storage),
                "NANOREPO_ALLOW_ANONYMOUS": "1" if self.allow_anonymous else "0",
                **self.service_environment,
            }
            spec["cwd"] = str(s.home)
        return spec

    def culler(self) -> dict[str, Any]:
        """The idle-culler entry of ``JupyterHub.services``."""
        command = [sys.executable, "-m", "jupyterhub_idle_culler"]
        command += [f"--timeout={self.cull_timeout}", f"--cull-every={self.cull_every}"]
        return {"name": "idle-culler", "command": command, "environment": self.propagated()}

    def roles(self) -> list[dict[str, Any]]:
        """The ``JupyterHub.load_roles`` entries: users, user servers, the culler."""
        access = f"access:services!service={self.service_name}"
        out: list[dict[str, Any]] = []
        if self.all_users_use_service:
            out.append(
                {"name": "user", "description": "Standard user privileges, and the nanorepo "
                 "service", "scopes": ["self", access]}
            )  # fmt: skip
        out.append(
            {"name": "server", "description": "User servers: activity, and their kernels "
             "call nanorepo as their user", "scopes": sorted({*self.server_scopes, access})}
        )  # fmt: skip
        if self.cull_idle:
            out.append(
                {"name": "idle-culler", "scopes": CULLER_SCOPES, "services": ["idle-culler"]}
            )
        return out

    def kube_profile_list(self) -> list[dict[str, Any]]:
        """``KubeSpawner.profile_list`` for :attr:`profiles` (limits and guarantees)."""
        out = []
        for p in self.profiles:
            override = {k: p[k] for k in ("cpu_limit", "mem_limit") if k in p}
            override |= {k.replace("limit", "guarantee"): v for k, v in override.items()}
            entry = {
                "display_name": p["display_name"],
                "slug": p["slug"],
                "description": p.get("description", ""),
                "kubespawner_override": override,
            }
            if p.get("default"):
                entry["default"] = True
            out.append(entry)
        return out

    def __deepcopy__(self, memo: dict[int, Any]) -> NanorepoHub:
        """The same object: traitlets deep-copies config values (the bound
        ``pre_spawn_hook``) for every Spawner it makes, and each copy would open a catalog
        connection pool of its own (many users on PostgreSQL would exhaust
        ``max_connections``)."""
        return self

    # spawn-time behaviour lives in _spawner (hook, options form); bound here so the
    # config applies one object's settings everywhere.
    def pre_spawn_hook(self, spawner: Any) -> Any:
        """``Spawner.pre_spawn_hook``: storage view and environment."""
        from nanorepo.hub._spawner import prepare_spawn

        return prepare_spawn(self, spawner)

    def apply_user_options(self, spawner: Any, user_options: Mapping[str, Any]) -> None:
        """``Spawner.apply_user_options`` (local spawners): the chosen size's limits."""
        from nanorepo.hub._spawner import apply_user_options

        apply_user_options(self, spawner, user_options)

    def options_form(self, spawner: Any) -> str:
        from nanorepo.hub._spawner import options_form

        return options_form(self, spawner)

    def options_from_form(self, formdata: Mapping[str, list[str]]) -> dict[str, Any]:
        from nanorepo.hub._spawner import options_from_form

        return options_from_form(self, formdata)

    def close(self) -> None:
        """Close the catalog connection the spawn hook opened (tests, reconfiguration)."""
        cat = self.__dict__.pop("_catalog", None)
        if cat is not None:
            cat.close()


def _merge(existing: Any, ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``existing`` config list with ``ours`` added; an entry of the same name is updated
    with ours (so keys set elsewhere, such as the chart's ``api_token`` of an external
    service, stay) and running :func:`configure` twice changes nothing."""
    kept = [dict(d) for d in existing] if isinstance(existing, list) else []
    names = [d.get("name") for d in kept]
    for d in ours:
        if d["name"] in names:
            kept[names.index(d["name"])].update(d)
        else:
            kept.append(d)
            names.append(d["name"])
    return kept


def configure(c: Config) -> NanorepoHub:
    """Apply the nanorepo pieces to the hub configuration ``c`` and return them.

    Reads ``c.NanorepoHub`` (set those traits first), then sets: the nanorepo service and
    the idle culler in ``JupyterHub.services`` (entries of other names are kept), their
    roles in ``JupyterHub.load_roles``, named servers, JupyterLab as the default UI, the
    spawn hook (storage view, environment) and the profiles (an options form and the
    user-options check
    for local spawners, ``KubeSpawner.profile_list`` on Kubernetes).
    """
    hub = NanorepoHub(config=c)
    services = [hub.service()] + ([hub.culler()] if hub.cull_idle else [])
    jh = c.JupyterHub
    jh.services = _merge(jh.get("services"), services)
    jh.load_roles = _merge(jh.get("load_roles"), hub.roles())
    jh.allow_named_servers = True
    c.Spawner.default_url = "/lab"
    c.Spawner.pre_spawn_hook = hub.pre_spawn_hook
    c.LocalProcessSpawner.apply_user_options = hub.apply_user_options
    c.LocalProcessSpawner.options_form = hub.options_form
    c.LocalProcessSpawner.options_from_form = hub.options_from_form
    c.KubeSpawner.profile_list = hub.kube_profile_list()
    _pages(c, hub)
    return hub


def _pages(c: Config, hub: NanorepoHub) -> None:
    """The hub's own pages: nanorepo's templates first (a *Repository* link to the
    service's landing page; with sign-up accounts, *Accounts* for admins and *Change
    password*) and, with sign-up accounts, the scope that lets the service list pending
    sign-ups (set ``JupyterHub.authenticator_class`` before calling :func:`configure`)."""
    from nanorepo.hub._native import SIGNUPS_SCOPE, TEMPLATES, NanorepoAuthenticator

    jh = c.JupyterHub
    paths = [p for p in (jh.get("template_paths") or []) if p != str(TEMPLATES)]
    jh.template_paths = [str(TEMPLATES), *paths]
    auth = jh.get("authenticator_class")
    accounts = isinstance(auth, type) and issubclass(auth, NanorepoAuthenticator)
    base = str(jh.get("base_url") or "/")
    jh.template_vars = {
        **dict(jh.get("template_vars") or {}),
        "nanorepo_service_url": f"{base.rstrip('/')}/services/{hub.service_name}/",
        "nanorepo_accounts": accounts,
    }
    if not accounts:  # no sign-ups to list (e.g. OIDC on Kubernetes)
        return
    jh.custom_scopes = {
        **dict(jh.get("custom_scopes") or {}),
        SIGNUPS_SCOPE: {"description": "List the sign-ups waiting for approval."},
    }
    role = {"name": "nanorepo-service", "description": "The nanorepo service: pending "
            "sign-ups for its landing page", "scopes": [SIGNUPS_SCOPE],
            "services": [hub.service_name]}  # fmt: skip
    jh.load_roles = _merge(jh.get("load_roles"), [role])
