"""What happens when a user's server starts: storage view, environment, profile.

:func:`prepare_spawn` is the ``Spawner.pre_spawn_hook`` (through
:meth:`NanorepoHub.pre_spawn_hook`). It reads the user's grants from the catalog at that
moment, so a grant given or withdrawn while a server runs takes effect at the server's
next start; the service checks every request immediately, whatever the view shows.
"""

from __future__ import annotations

import asyncio
import html
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanorepo.errors import InvalidInput
from nanorepo.hub._view import (
    build_local_view,
    hub_principal,
    kube_storage,
    readable_embargoed,
    view_dir_name,
)

if TYPE_CHECKING:
    from nanorepo.catalog import Catalog
    from nanorepo.hub._config import NanorepoHub

__all__ = [
    "KUBE_ENV",
    "apply_user_options",
    "configure_kubernetes",
    "gateway_cluster_config",
    "options_form",
    "options_from_form",
    "prepare_spawn",
]

#: What the Helm chart (helm/nanorepo) tells the hub and the Dask Gateway server, as
#: environment variables (its ConfigMap ``nanorepo-hub`` and Secret ``nanorepo-database``),
#: and the NanorepoHub trait each one sets.
KUBE_ENV: dict[str, str] = {
    "NANOREPO_DATABASE_URL": "database_url",
    "NANOREPO_SERVICE_URL": "service_url",
    "NANOREPO_STORAGE_CLAIM": "kube_volume",
    "NANOREPO_STORAGE_SUBPATH": "kube_storage_subpath",
    "NANOREPO_MOUNT_PATH": "kube_mount_path",
}

_catalog_lock = threading.Lock()


def _catalog(hub: NanorepoHub) -> Catalog:
    """The catalog, opened once per hub process (a connection pool, not per spawn)."""
    with _catalog_lock:
        cat: Catalog | None = hub.__dict__.get("_catalog")
        if cat is None:
            from nanorepo.catalog import Catalog
            from nanorepo.repository import catalog_exists, no_repository

            settings = hub.settings()
            if not catalog_exists(settings.database_url):  # `nanorepo up` (or init) makes it
                raise no_repository(settings)
            cat = Catalog(settings.database_url)
            hub.__dict__["_catalog"] = cat
        return cat


def readable_for(hub: NanorepoHub, user: str, *, admin: bool, groups: list[str]) -> list[str]:
    """Embargoed accessions hub user ``user`` may read now (catalog grants + hub groups)."""
    cat = _catalog(hub)
    with cat.session() as s:
        return readable_embargoed(s, hub_principal(s, user, admin=admin, groups=groups))


def _kubernetes(hub: NanorepoHub, spawner: Any) -> bool:
    if hub.storage_mode != "auto":
        return hub.storage_mode == "kubernetes"
    return hasattr(spawner, "volume_mounts")


def _replaced(
    existing: Any, name: str, ours: list[dict[str, Any]]
) -> list[dict[str, Any]] | dict[str, dict[str, Any]]:
    """KubeSpawner's ``volumes`` / ``volume_mounts`` with the entries of volume ``name``
    replaced by ``ours``. Both forms KubeSpawner takes are kept as they are: a list, or a
    dict whose values it sorts by key (the zero-to-jupyterhub chart sets the dict form)."""
    if isinstance(existing, Mapping):
        kept = {k: v for k, v in existing.items() if v.get("name") != name}
        return kept | {f"{name}-{i:05d}": entry for i, entry in enumerate(ours)}
    return [v for v in existing if v.get("name") != name] + ours


async def prepare_spawn(hub: NanorepoHub, spawner: Any) -> None:
    """Give ``spawner``'s server its storage view and environment (the profile's limits
    were set by :func:`apply_user_options` before; KubeSpawner applies its own).

    Environment of the server: ``NANOREPO_STORAGE`` (the view), ``NANOREPO_URL`` (the
    service as servers reach it) and the hub's :attr:`~NanorepoHub.propagate_env`; the
    token is the server's own ``JUPYTERHUB_API_TOKEN``, which the client and
    ``nanorepo.open`` fall back to.
    """
    user = spawner.user
    groups = sorted(g.name for g in getattr(user, "groups", None) or ())
    admin = bool(getattr(user, "admin", False))
    accessions = await asyncio.to_thread(readable_for, hub, user.name, admin=admin, groups=groups)
    env = {**hub.propagated(), "NANOREPO_URL": hub.servers_url()}
    if _kubernetes(hub, spawner):
        volumes, mounts = kube_storage(
            accessions,
            volume=hub.kube_volume,
            mount_path=hub.kube_mount_path,
            sub_path=hub.kube_storage_subpath,
        )
        ours = volumes[0]["name"]
        # The spawner object outlives a stop: replace what the last start added.
        spawner.volumes = _replaced(spawner.volumes, ours, volumes)
        spawner.volume_mounts = _replaced(spawner.volume_mounts, ours, mounts)
        env["NANOREPO_STORAGE"] = hub.kube_mount_path
    else:
        settings = hub.settings()
        root = Path(hub.views_dir) if hub.views_dir else settings.home / "views"
        view = root / view_dir_name(user.name)
        await asyncio.to_thread(build_local_view, view, settings.storage, accessions)
        env["NANOREPO_STORAGE"] = str(view)
    spawner.environment = {**spawner.environment, **env}
    spawner.log.info(
        "nanorepo: %s's server sees the public area and %d embargoed dataset(s)",
        user.name,
        len(accessions),
    )


def configure_kubernetes(c: Any, environ: Mapping[str, str]) -> None:
    """Set ``c.NanorepoHub`` as the Helm chart's hub and Gateway need it, from ``environ``.

    The chart (``helm/nanorepo``) gives the hub pod and the Dask Gateway server the
    variables of :data:`KUBE_ENV`; its ``hub.extraConfig`` calls this, then
    :func:`~nanorepo.hub.configure`. The service runs as its own Deployment (no command:
    the hub only registers it; the chart's ``hub.services.nanorepo`` holds its token),
    user pods mount the storage claim read-only, and z2jh's own idle culler runs
    (``jupyterhub.cull``), so nanorepo's is off.
    """
    missing = sorted(k for k in KUBE_ENV if k not in environ)
    if missing:
        raise InvalidInput(
            "the chart's environment is incomplete: " + ", ".join(missing) + " not set",
            hint="the hub and the gateway get them from the ConfigMap nanorepo-hub and the "
            "Secret nanorepo-database of helm/nanorepo (jupyterhub.hub.extraEnv)",
        )
    hub = c.NanorepoHub
    hub.home = "/srv/nanorepo"  # settings only: nothing is read or written there
    hub.database_url = environ["NANOREPO_DATABASE_URL"]
    hub.service_url = environ["NANOREPO_SERVICE_URL"]
    hub.service_command = []
    hub.storage_mode = "kubernetes"
    hub.kube_volume = {
        "name": "nanorepo-storage",
        "persistentVolumeClaim": {"claimName": environ["NANOREPO_STORAGE_CLAIM"], "readOnly": True},
    }
    hub.kube_storage_subpath = environ["NANOREPO_STORAGE_SUBPATH"]
    hub.kube_mount_path = environ["NANOREPO_MOUNT_PATH"]
    hub.cull_idle = False


def gateway_cluster_config(hub: NanorepoHub, user: Any) -> dict[str, Any]:
    """``KubeClusterConfig`` overrides that give ``user``'s Dask Gateway cluster the
    same read-only storage view as the user's server (the Gateway's options handler
    returns them; ``user`` is dask-gateway's ``User``: name, groups, admin).

    Read at each cluster start, like :func:`prepare_spawn`: the public area plus the
    embargoed datasets granted now, every mount ``readOnly``, in the scheduler and every
    worker; the pods get no Kubernetes API token.
    """
    accessions = readable_for(
        hub, user.name, admin=bool(user.admin), groups=sorted(user.groups or ())
    )
    volumes, mounts = kube_storage(
        accessions,
        volume=hub.kube_volume,
        mount_path=hub.kube_mount_path,
        sub_path=hub.kube_storage_subpath,
    )
    pod = {"volumes": volumes, "automountServiceAccountToken": False}
    container = {"volumeMounts": mounts}
    return {
        "worker_extra_pod_config": pod,
        "worker_extra_container_config": container,
        "scheduler_extra_pod_config": pod,
        "scheduler_extra_container_config": container,
        "environment": {"NANOREPO_STORAGE": hub.kube_mount_path, "NANOREPO_URL": hub.servers_url()},
    }


def _profile(hub: NanorepoHub, slug: object) -> dict[str, Any] | None:
    if not hub.profiles:
        return None
    if slug in (None, ""):
        return next((p for p in hub.profiles if p.get("default")), hub.profiles[0])
    for p in hub.profiles:
        if p["slug"] == slug:
            return p
    raise InvalidInput(
        f"there is no server size {slug!r}",
        hint="choose one of: " + ", ".join(p["slug"] for p in hub.profiles),
    )


def apply_user_options(hub: NanorepoHub, spawner: Any, user_options: Mapping[str, Any]) -> None:
    """``Spawner.apply_user_options`` of local spawners: the chosen profile's limits.

    ``user_options`` come from the options form or straight from the REST API, so they
    are checked: an unknown size is a 400 that tells the user the sizes there are.
    """
    from tornado.web import HTTPError

    try:
        p = _profile(hub, (user_options or {}).get("profile"))
    except InvalidInput as exc:
        raise HTTPError(400, f"{exc.message}; {exc.hint}") from None
    if p is None:
        return
    if "mem_limit" in p:
        spawner.mem_limit = p["mem_limit"]
    if "cpu_limit" in p:
        spawner.cpu_limit = float(p["cpu_limit"])


def options_form(hub: NanorepoHub, spawner: Any) -> str:
    """The server-size choice shown before a local server starts (radio buttons)."""
    if len(hub.profiles) < 2:
        return ""
    default = _profile(hub, None)
    rows = []
    for p in hub.profiles:
        slug = html.escape(p["slug"])
        checked = " checked" if p is default else ""
        rows.append(
            f'<div class="radio"><label><input type="radio" name="profile" value="{slug}"'
            f"{checked}> <strong>{html.escape(str(p['display_name']))}</strong> "
            f"{html.escape(str(p.get('description', '')))}</label></div>"
        )
    return "<fieldset><legend>Server size</legend>" + "".join(rows) + "</fieldset>"


def options_from_form(hub: NanorepoHub, formdata: Mapping[str, list[str]]) -> dict[str, Any]:
    """``user_options`` from the submitted form (the chosen profile's slug, checked)."""
    slug = (formdata.get("profile") or [""])[0]
    p = _profile(hub, slug)
    return {"profile": p["slug"]} if p is not None else {}
