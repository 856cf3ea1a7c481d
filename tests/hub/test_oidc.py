"""Signing in with an OpenID Connect provider (the ORCID / LS Login configuration), offline:
a mock provider (oidc-provider-mock) on loopback, a real hub configured with
:func:`nanorepo.hub.configure_oidc`, a browser going through the whole code flow, and the
provider's groups reaching the service as group grants.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from traitlets.config import Config

from nanorepo.errors import ConfigurationError
from nanorepo.hub import OidcProvider, configure_oidc, entitlement_groups
from nanorepo.hub._oidc import discover
from nanorepo.testing._hub import LiveHub, live_hub

pytestmark = [
    pytest.mark.slow,
    # the mock provider (a thread of this process) runs on authlib APIs that authlib
    # deprecates; their warnings would become errors inside its responses: not ours
    pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*"),
]

LAB = "urn:geant:lifescience-ri.eu:group:lab#aai.lifescience-ri.eu"
MEMBER = "0000-0002-1825-0097"  # an ORCID iD, in the provider's group "lab"
OUTSIDER = "0000-0001-5109-3700"  # known to the provider, in no group


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    # (importing it shows two AuthlibDeprecationWarnings: authlib forces its own warnings
    # on with a filter of its own, at import; they are about authlib, not nanorepo)
    from oidc_provider_mock import User, run_server_in_thread

    users = [User(sub=MEMBER, claims={"eduperson_entitlement": [LAB, "urn:other"]}),
             User(sub=OUTSIDER)]  # fmt: skip
    with run_server_in_thread(user_claims=users) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def oidc_hub(provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    extra = f"""
from nanorepo.hub import OidcProvider, configure_oidc
c.JupyterHub.load_groups = {{}}  # groups come from the provider now
c.JupyterHub.load_roles = [*c.JupyterHub.load_roles,
    {{"name": "oidc-users", "scopes": ["access:services!service=nanorepo"], "groups": ["lab"]}}]
configure_oidc(
    c, OidcProvider("Test provider", {provider!r}, ("openid",), groups_claim="eduperson_entitlement"),
    client_id="nanorepo-hub", client_secret="s3cret",
    callback_url="http://127.0.0.1:" + str(c.JupyterHub.port) + "/hub/oauth_callback",
    allowed_groups=["lab"],
)
"""
    with live_hub(tmp_path_factory.mktemp("oidc-hub"), extra_config=extra) as hub:
        yield hub


def _sign_in(hub: LiveHub, browser: httpx.Client, sub: str) -> httpx.Response:
    """The code flow as a browser runs it: hub → provider's form → provider → hub."""
    r = browser.get(f"{hub.url}/hub/oauth_login", follow_redirects=False)
    assert r.status_code == 302
    authorize = r.headers["location"]
    assert "client_id=nanorepo-hub" in authorize
    form = browser.get(authorize)
    assert form.status_code == 200
    r = browser.post(authorize, data={"sub": sub}, follow_redirects=False)
    assert r.status_code == 302 and "/hub/oauth_callback" in r.headers["location"]
    return browser.get(urljoin(authorize, r.headers["location"]), follow_redirects=False)


def test_provider_member_signs_in_and_uses_the_service(oidc_hub: LiveHub) -> None:
    hub, seed = oidc_hub, oidc_hub.seed
    with httpx.Client(timeout=60) as browser:
        done = _sign_in(hub, browser, MEMBER)
        assert done.status_code == 302, done.text[:300]
        with hub.api() as api:
            user = api.get(f"/users/{MEMBER}").json()
        assert user["groups"] == ["lab", "urn:other"]  # from the provider's entitlements
        assert not user["admin"]
        # the browser signs in to the service through the hub (Hub OAuth), as a person
        r = browser.get(f"{hub.service_url}/login", params={"next": "/services/nanorepo/datasets"},
                        follow_redirects=True)  # fmt: skip
        assert r.status_code == 200 and r.url.path == "/services/nanorepo/datasets"
        assert browser.get(f"{hub.service_url}/health").json()["user"] == MEMBER
        listed = r.json()["items"]
        # the catalog grants the embargoed dataset to group "lab": the provider's group
        assert {d["accession"] for d in listed} == {seed.public, seed.granted}


def test_provider_user_outside_the_allowed_groups_is_refused(oidc_hub: LiveHub) -> None:
    with httpx.Client(timeout=60) as browser:
        done = _sign_in(oidc_hub, browser, OUTSIDER)
        assert done.status_code == 403
        assert browser.get(f"{oidc_hub.url}/hub/api/user").status_code == 403
    with oidc_hub.api() as api:
        assert api.get(f"/users/{OUTSIDER}").status_code == 404


def test_endpoints_are_discovered(provider: str) -> None:
    ep = discover(provider)
    assert ep["authorization_endpoint"] == f"{provider}/oauth2/authorize"
    assert set(ep) == {"authorization_endpoint", "token_endpoint", "userinfo_endpoint"}
    with pytest.raises(ConfigurationError, match="cannot read"):
        discover(provider + "/nothing-here")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"provider": "facebook"}, "no OpenID Connect provider 'facebook'"),
        ({}, "say who may sign in with ORCID"),
        ({"allowed_groups": ["lab"]}, "ORCID sends no groups"),
    ],
)
def test_configuration_mistakes_are_refused(kwargs: dict[str, Any], problem: str) -> None:
    args: dict[str, Any] = {"provider": "orcid", "client_id": "x", "client_secret": "y",
                            "callback_url": "https://hub/hub/oauth_callback",
                            "endpoints": {}} | kwargs  # fmt: skip
    with pytest.raises(ConfigurationError, match=problem):
        configure_oidc(Config(), **args)


def test_presets_configure_generic_oauthenticator() -> None:
    c = Config()
    endpoints = {"authorization_endpoint": "https://idp/a", "token_endpoint": "https://idp/t",
                 "userinfo_endpoint": "https://idp/u"}  # fmt: skip
    configure_oidc(c, "ls-login", client_id="id", client_secret="secret",
                   callback_url="https://hub.example.org/hub/oauth_callback",
                   allowed_groups=["nanoscopy"], admin_users=["curator@lifescience-ri.eu"],
                   endpoints=endpoints)  # fmt: skip
    g = c.GenericOAuthenticator
    assert c.JupyterHub.authenticator_class == "generic-oauth"
    assert (g.authorize_url, g.token_url, g.userdata_url) == ("https://idp/a", "https://idp/t",
                                                              "https://idp/u")  # fmt: skip
    assert g.username_claim == "sub" and "eduperson_entitlement" in g.scope
    assert g.manage_groups is True and g.allowed_groups == {"nanoscopy"}
    assert g.allow_all is False and g.admin_users == {"curator@lifescience-ri.eu"}
    state = {"oauth_user": {"eduperson_entitlement": [LAB, "urn:geant:x:group:a:b#y", 7]}}
    assert g.auth_state_groups_key(state) == ["a:b", "lab"]
    assert re.fullmatch(c.Authenticator.username_pattern, "f99bba1f63@lifescience-ri.eu")
    assert re.fullmatch(c.Authenticator.username_pattern, MEMBER)


def test_entitlement_groups() -> None:
    assert entitlement_groups([LAB, LAB, "plain", "", None]) == ["lab", "plain"]


def test_oidc_provider_is_a_value() -> None:
    p = OidcProvider("X", "https://x")
    assert p.scope == ("openid",) and p.username_claim == "sub" and p.groups_claim is None
    with pytest.raises(AttributeError):
        p.name = "Y"  # type: ignore[misc]


def test_view_dir_for_provider_subjects(tmp_path: Path) -> None:
    from nanorepo.hub import build_local_view, view_dir_name

    name = view_dir_name("f99bba1f63@lifescience-ri.eu")
    assert name == "f99bba1f63.40lifescience-ri.2eeu"
    assert build_local_view(tmp_path / name, tmp_path / "storage", []).is_dir()
