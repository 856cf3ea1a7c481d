"""Signing in beyond the lab: an OpenID Connect provider (ORCID, LS Login / ELIXIR AAI).

:func:`configure_oidc` sets up ``oauthenticator``'s GenericOAuthenticator, the hub
ecosystem's maintained OAuth 2 / OpenID Connect client, for a provider from
:data:`PROVIDERS` or any other. Endpoints come from the provider's discovery document
(``<issuer>/.well-known/openid-configuration``) rather than from copied URLs, so they
follow the provider. Account names are the provider's stable subject (``sub``: an ORCID
iD, an LS ID), never a display name or e-mail address that can change hands.

With a ``groups_claim`` (LS Login's ``eduperson_entitlement``) the user's groups at the
provider become hub groups at every login, and the service honours grants to those groups
(``nanorepo grant ACC --group lab``). LS Login group entitlements
(``urn:geant:lifescience-ri.eu:group:lab:sub#aai.lifescience-ri.eu``) are named by their
group path (``lab:sub``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from traitlets.config import Config

from nanorepo.errors import ConfigurationError

__all__ = ["PROVIDERS", "OidcProvider", "configure_oidc", "discover", "entitlement_groups"]


@dataclass(frozen=True)
class OidcProvider:
    """An OpenID Connect provider: its issuer and what nanorepo asks of it.

    Attributes
    ----------
    name:
        Shown on the login button ("Sign in with ORCID").
    issuer:
        The issuer URL; its discovery document gives the endpoints.
    scope:
        Scopes requested.
    username_claim:
        The claim that names the hub account (stable: ``sub``).
    groups_claim:
        A claim listing the user's groups at the provider, or None.
    """

    name: str
    issuer: str
    scope: tuple[str, ...] = ("openid",)
    username_claim: str = "sub"
    groups_claim: str | None = None


#: Providers a nanoscopy repository is most likely to use.
PROVIDERS: dict[str, OidcProvider] = {
    "orcid": OidcProvider("ORCID", "https://orcid.org", ("openid",)),
    "ls-login": OidcProvider(
        "LS Login",
        "https://login.aai.lifescience-ri.eu/oidc/",
        ("openid", "profile", "email", "eduperson_entitlement"),
        groups_claim="eduperson_entitlement",
    ),
}

_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")


def discover(issuer: str, *, timeout_s: float = 10.0) -> dict[str, str]:
    """The provider's endpoints from its discovery document (OpenID Connect Discovery)."""
    import httpx

    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    hint = "check the issuer URL and that the hub can reach it (or pass endpoints=...)"
    try:
        r = httpx.get(url, timeout=timeout_s, follow_redirects=True)
        r.raise_for_status()
        doc = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {url}: {exc}", hint=hint) from None
    missing = [k for k in _ENDPOINTS if not isinstance(doc.get(k), str)]
    if missing:
        raise ConfigurationError(f"{url} names no {', '.join(missing)}", hint=hint)
    return {k: doc[k] for k in _ENDPOINTS}


def entitlement_groups(values: Iterable[object]) -> list[str]:
    """Hub group names for a groups claim: AARC group entitlements
    (``urn:geant:<domain>:group:<path>[#<authority>]``) by their path, other strings
    as they are; sorted, without duplicates."""
    out = set()
    for v in values:
        if not isinstance(v, str) or not v:
            continue
        head, sep, path = v.partition(":group:")
        if sep and head.startswith("urn:geant:"):
            v = path.split("#", 1)[0]
        if v:
            out.add(v)
    return sorted(out)


def _groups(claim: str, auth_state: Mapping[str, Any]) -> list[str]:
    user = auth_state.get("oauth_user") or {}
    values = user.get(claim) or []
    return entitlement_groups([values] if isinstance(values, str) else values)


def configure_oidc(
    c: Config,
    provider: str | OidcProvider,
    *,
    client_id: str,
    client_secret: str,
    callback_url: str,
    allowed_users: Iterable[str] = (),
    allowed_groups: Iterable[str] = (),
    admin_users: Iterable[str] = (),
    allow_all: bool = False,
    endpoints: Mapping[str, str] | None = None,
) -> None:
    """Make the hub ``c`` sign people in with an OpenID Connect provider.

    Parameters
    ----------
    provider:
        ``"orcid"``, ``"ls-login"`` (:data:`PROVIDERS`) or an :class:`OidcProvider`.
    client_id, client_secret:
        This hub's registration at the provider.
    callback_url:
        ``https://<hub>/hub/oauth_callback``, as registered at the provider.
    allowed_users, allowed_groups, allow_all:
        Who may sign in: these subjects, members of these provider groups (needs a
        ``groups_claim``), or everyone the provider knows (``allow_all``). One is
        required: an ORCID account alone is not a reason to get a server here.
    admin_users:
        Subjects who are hub admins (and so repository admins).
    endpoints:
        The provider's endpoints, when not discovered from its issuer.
    """
    p = PROVIDERS.get(provider) if isinstance(provider, str) else provider
    if p is None:
        raise ConfigurationError(
            f"no OpenID Connect provider {provider!r}",
            hint="use " + ", ".join(PROVIDERS) + ", or an OidcProvider(name, issuer, ...)",
        )
    users, groups = set(allowed_users), set(allowed_groups)
    if not (users or groups or allow_all):
        raise ConfigurationError(
            f"say who may sign in with {p.name}",
            hint="pass allowed_users=, allowed_groups= (with a groups claim) or allow_all=True",
        )
    if groups and not p.groups_claim:
        raise ConfigurationError(f"{p.name} sends no groups: allowed_groups cannot work")
    ep = dict(endpoints) if endpoints is not None else discover(p.issuer)
    c.JupyterHub.authenticator_class = "generic-oauth"
    g = c.GenericOAuthenticator
    g.login_service = p.name
    g.client_id, g.client_secret, g.oauth_callback_url = client_id, client_secret, callback_url
    g.authorize_url = ep["authorization_endpoint"]
    g.token_url = ep["token_endpoint"]
    g.userdata_url = ep["userinfo_endpoint"]
    g.scope = list(p.scope)
    g.username_claim = p.username_claim
    g.allowed_users, g.admin_users, g.allow_all = users, set(admin_users), allow_all
    if p.groups_claim:
        g.manage_groups = True
        g.auth_state_groups_key = partial(_groups, p.groups_claim)
        g.allowed_groups = groups
    # subjects name accounts: an LS ID has an '@', an ORCID iD digits and dashes
    c.Authenticator.username_pattern = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
