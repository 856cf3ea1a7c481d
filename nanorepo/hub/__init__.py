"""The hub side of nanorepo: JupyterHub pieces shared by ``nanorepo up`` and Kubernetes.

- :class:`NanorepoHub` and :func:`configure`: the nanorepo service (Hub OAuth), the idle
  culler, roles, the spawn hook (storage view and environment of every user server) and
  server profiles, as traitlets configuration (``c.NanorepoHub.*``).
- :func:`configure_local`: the embedded hub of ``nanorepo up`` (NativeAuthenticator,
  local processes), what ``hub/jupyterhub_config.py`` calls.
- :func:`configure_oidc`: sign-in with ORCID, LS Login or another OpenID Connect provider.
- :func:`readable_embargoed`, :func:`build_local_view`, :func:`kube_storage`: the storage
  view itself, from the catalog's grants.
"""

from __future__ import annotations

import nanorepo._hub_extra  # noqa: F401  (a clear error if the extra is missing)
from nanorepo.hub._config import DEFAULT_PROFILES, SERVER_SCOPES, NanorepoHub, configure
from nanorepo.hub._local import LocalHub, LocalSpawner, configure_local
from nanorepo.hub._native import NanorepoAuthenticator
from nanorepo.hub._oidc import OidcProvider, configure_oidc, entitlement_groups
from nanorepo.hub._processes import MARK, marked, stop_marked
from nanorepo.hub._proxy import CHP_VERSION, find_proxy
from nanorepo.hub._view import (
    build_local_view,
    hub_principal,
    kube_storage,
    readable_embargoed,
    view_dir_name,
)

__all__ = [
    "CHP_VERSION",
    "DEFAULT_PROFILES",
    "MARK",
    "SERVER_SCOPES",
    "LocalHub",
    "LocalSpawner",
    "NanorepoAuthenticator",
    "NanorepoHub",
    "OidcProvider",
    "build_local_view",
    "configure",
    "configure_local",
    "configure_oidc",
    "entitlement_groups",
    "find_proxy",
    "hub_principal",
    "kube_storage",
    "marked",
    "readable_embargoed",
    "stop_marked",
    "view_dir_name",
]
