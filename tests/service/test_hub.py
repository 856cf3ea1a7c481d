"""Identity from JupyterHub, against a real hub: hub API tokens (notebooks), the Hub OAuth
browser flow with its cookie, hub admins and hub groups, scopes, and open redirects.

The ``jupyterhub`` fixture runs one hub per module and backend behind a real
configurable-http-proxy; every request here goes through the proxy to
``/services/nanorepo/``, as users' requests do. The last test runs this module again
against JupyterHub 5.5 (the zero-to-jupyterhub hub image's line) in an overlay
virtualenv, ``.venv-hub55/`` at the repository root.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import select

from nanorepo.catalog import Catalog
from nanorepo.catalog.models import User
from nanorepo.errors import ConfigurationError
from nanorepo.service._hub import (
    HubUnavailable,
    JupyterHubIdentity,
    _Login,
    _LoginCookie,
    safe_next_url,
)
from nanorepo.service._problems import status_of
from nanorepo.settings import Settings
from nanorepo.testing._hub import LiveHub, overlay_venv

PREFIX = "/services/nanorepo/"
PROBLEM = "application/problem+json"
ROOT = Path(__file__).resolve().parents[2]


def _get(hub: LiveHub, path: str, token: str | None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"token {token}"
    return httpx.get(f"{hub.service_url}{path}", headers=headers, timeout=30)


# -- hub API tokens (what notebooks send) -------------------------------------------------


def test_hub_user_token_sees_what_the_user_may(jupyterhub: LiveHub) -> None:
    hub, seed = jupyterhub, jupyterhub.seed
    bob = hub.user_token("bob")
    assert _get(hub, "/health", bob).json()["user"] == "bob"
    assert _get(hub, f"/datasets/{seed.public}", bob).status_code == 200
    assert _get(hub, f"/datasets/{seed.granted}", bob).status_code == 200  # granted by name
    hidden = _get(hub, f"/datasets/{seed.hidden}", bob)
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == PROBLEM
    carol = hub.user_token("carol")  # signed in, granted nothing
    assert _get(hub, f"/datasets/{seed.granted}", carol).status_code == 404


def test_hub_group_grants_access(jupyterhub: LiveHub) -> None:
    """frank is in no catalog group, only in the hub group ``lab``, which is granted the
    embargoed dataset; dave is in both."""
    hub, seed = jupyterhub, jupyterhub.seed
    for user in ("frank", "dave"):
        token = hub.user_token(user)
        assert _get(hub, f"/datasets/{seed.granted}", token).status_code == 200, user
        assert _get(hub, f"/datasets/{seed.hidden}", token).status_code == 404, user
        listed = {d["accession"] for d in _get(hub, "/datasets", token).json()["items"]}
        assert listed == {seed.public, seed.granted}, user


def test_new_hub_user_gets_a_catalog_row(jupyterhub: LiveHub) -> None:
    """So grants by name work for people the catalog had never seen (frank: hub only)."""
    hub = jupyterhub
    assert _get(hub, "/health", hub.user_token("frank")).status_code == 200
    cat = Catalog(hub.settings.database_url)
    try:
        with cat.session() as s:
            row = s.exec(select(User).where(User.name == "frank")).one()
            assert row.role == "reader"
    finally:
        cat.close()


def test_hub_admin_is_repository_admin(jupyterhub: LiveHub) -> None:
    hub, seed = jupyterhub, jupyterhub.seed
    with hub.api() as api:
        assert api.get("/users/root").json()["admin"] is True
    root = hub.user_token("root")
    r = _get(hub, f"/datasets/{seed.hidden}", root)
    assert r.status_code == 200
    assert "embargo" in r.json()["can"]  # curators and admins only
    # A catalog role still counts for non-admins: cur is a curator in the catalog only.
    assert _get(hub, f"/datasets/{seed.hidden}", hub.user_token("cur")).status_code == 200


def test_hub_admin_outranks_the_catalog_role(jupyterhub: LiveHub) -> None:
    """Promote carol to hub admin: her catalog role (reader) no longer limits her."""
    hub, seed = jupyterhub, jupyterhub.seed
    before = hub.user_token("carol")
    assert _get(hub, f"/datasets/{seed.hidden}", before).status_code == 404
    with hub.api() as api:
        api.patch("/users/carol", json={"admin": True}).raise_for_status()
    try:
        after = hub.user_token("carol")  # a new token: the service caches answers per token
        assert _get(hub, f"/datasets/{seed.hidden}", after).status_code == 200
    finally:
        with hub.api() as api:
            api.patch("/users/carol", json={"admin": False}).raise_for_status()


@pytest.mark.parametrize(
    "token",
    ["not-a-hub-token-at-all", "0123456789abcdef0123456789abcdef", "short", "a" * 300],
)
def test_invalid_token_is_401(jupyterhub: LiveHub, token: str) -> None:
    r = _get(jupyterhub, f"/datasets/{jupyterhub.seed.public}", token)
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["status"] == 401
    assert "not valid" in r.json()["detail"]


def test_without_credentials_is_401(jupyterhub: LiveHub) -> None:
    r = _get(jupyterhub, "/datasets", None)
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM


def test_token_without_the_service_scope_is_403(jupyterhub: LiveHub) -> None:
    hub = jupyterhub
    eve = hub.user_token("eve")  # a hub user whose roles do not include the service
    r = _get(hub, "/datasets", eve)
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM
    assert "access:services!service=nanorepo" in r.json()["detail"]
    # bob may use the service, but not with a token restricted to reading his name.
    narrow = hub.user_token("bob", scopes=["read:users:name!user=bob"])
    assert _get(hub, "/datasets", narrow).status_code == 403


def test_hub_service_token_is_not_a_user(jupyterhub: LiveHub) -> None:
    r = _get(jupyterhub, "/datasets", jupyterhub.admin_token)
    assert r.status_code == 403
    assert "not to a user" in r.json()["detail"]


# -- the Hub OAuth browser flow ---------------------------------------------------------


@contextmanager
def _browser(hub: LiveHub, user: str | None) -> Iterator[httpx.Client]:
    """A client that keeps cookies like a browser, signed in to the hub as ``user``."""
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        if user is not None:
            hub.browser_login(client, user)
        yield client


def test_oauth_browser_flow(jupyterhub: LiveHub) -> None:
    hub, seed = jupyterhub, jupyterhub.seed
    with _browser(hub, "frank") as browser:
        r = browser.get(f"{PREFIX}login", params={"next": f"{PREFIX}datasets"},
                        follow_redirects=True)  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.url.path == f"{PREFIX}datasets"
        hops = [h.url.path for h in r.history]
        assert hops == [f"{PREFIX}login", "/hub/api/oauth2/authorize", f"{PREFIX}oauth_callback"]
        assert {d["accession"] for d in r.json()["items"]} == {seed.public, seed.granted}
        # The cookie: HttpOnly, SameSite=Lax, scoped to the service, not Secure over http.
        set_cookie = [v for k, v in r.history[-1].headers.multi_items() if k == "set-cookie"]
        token_cookie = next(c for c in set_cookie if c.startswith("service-nanorepo="))
        attrs = {a.strip().lower() for a in token_cookie.split(";")[1:]}
        assert {"httponly", "samesite=lax", f"path={PREFIX}"} <= attrs
        assert "secure" not in attrs
        assert any("service-nanorepo-oauth-state=" in c and "max-age=0" in c.lower()
                   for c in set_cookie)  # fmt: skip
        assert browser.get(f"{PREFIX}health").json()["user"] == "frank"
        assert browser.get(f"{PREFIX}datasets/{seed.granted}").status_code == 200
        assert browser.get(f"{PREFIX}datasets/{seed.hidden}").status_code == 404
        # Scripts (fetch from any page, even same-origin) and writes never ride the cookie.
        cors = browser.get(f"{PREFIX}health", headers={"Sec-Fetch-Mode": "cors"})
        assert cors.status_code == 401
        img = browser.get(
            f"{PREFIX}health",
            headers={"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "same-origin"},
        )
        assert img.status_code == 200
        cross = browser.get(
            f"{PREFIX}health", headers={"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Site": "cross-site"}
        )
        assert cross.status_code == 401
        post = browser.post(f"{PREFIX}datasets/{seed.granted}/grants",
                            json={"kind": "user", "principal": "frank"})  # fmt: skip
        assert post.status_code == 401


def test_oauth_cookie_over_https_is_secure(jupyterhub: LiveHub) -> None:
    """Behind TLS termination (X-Forwarded-Proto: https) both cookies get Secure."""
    hub = jupyterhub
    with _browser(hub, "bob") as browser:
        https = {"X-Forwarded-Proto": "https"}
        start = browser.get(f"{PREFIX}login", headers=https)
        assert start.status_code == 302
        assert "secure" in start.headers["set-cookie"].lower()
        authorize = browser.get(start.headers["location"])
        assert authorize.status_code == 302
        # The Secure state cookie is not sent back over plain http by the client's jar,
        # so hand it over as a browser on https would.
        sealed = start.headers["set-cookie"].split(";")[0]
        assert sealed.startswith("service-nanorepo-oauth-state=")
        done = browser.get(authorize.headers["location"], headers={**https, "Cookie": sealed})
        assert done.status_code == 302, done.text
        token_cookie = next(
            v for k, v in done.headers.multi_items()
            if k == "set-cookie" and v.startswith("service-nanorepo=")
        )  # fmt: skip
        assert "secure" in token_cookie.lower()


def test_login_without_hub_session_goes_to_hub_login(jupyterhub: LiveHub) -> None:
    with _browser(jupyterhub, None) as browser:
        r = browser.get(f"{PREFIX}login", follow_redirects=True)
        assert r.status_code == 200
        assert r.url.path == "/hub/login"
        assert "service-nanorepo" not in browser.cookies


# -- open redirects and forged callbacks ------------------------------------------------

EVIL_NEXT = [
    "https://evil.example/",
    "//evil.example/x",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "/hub/admin",
    "/services/nanorepox",
    "/services/nanorepo/../../hub/admin",
    "/services/nanorepo/%2e%2e/%2e%2e/hub",
    "/services/nanorepo/\t/evil.example",
    "http://127.0.0.1/services/nanorepo/datasets",
]


@pytest.mark.parametrize("next_url", EVIL_NEXT)
def test_safe_next_url_refuses(next_url: str) -> None:
    with pytest.raises(ValueError, match="must be a path of this service"):
        safe_next_url(next_url, PREFIX)


@pytest.mark.parametrize(
    "next_url", [f"{PREFIX}datasets", f"{PREFIX}datasets?q=pores&limit=5", PREFIX.rstrip("/")]
)
def test_safe_next_url_accepts(next_url: str) -> None:
    assert safe_next_url(next_url, PREFIX) == next_url
    assert safe_next_url(None, PREFIX) == PREFIX


def test_login_refuses_open_redirects(jupyterhub: LiveHub) -> None:
    with _browser(jupyterhub, "bob") as browser:
        for next_url in EVIL_NEXT:
            r = browser.get(f"{PREFIX}login", params={"next": next_url})
            assert r.status_code == 422, next_url
            assert r.headers["content-type"] == PROBLEM
            assert "location" not in r.headers
            assert "set-cookie" not in r.headers  # nothing started


def _code_and_state(hub: LiveHub, browser: httpx.Client, next_url: str | None = None) -> str:
    """Run a sign-in up to the hub's redirect to the callback; return that callback URL."""
    params = {"next": next_url} if next_url else None
    start = browser.get(f"{PREFIX}login", params=params)
    assert start.status_code == 302
    authorize = browser.get(start.headers["location"])
    assert authorize.status_code == 302
    callback = authorize.headers["location"]
    assert urlsplit(callback).path == f"{PREFIX}oauth_callback"
    return callback


def test_callback_refuses_forged_or_foreign_state(jupyterhub: LiveHub) -> None:
    hub = jupyterhub
    with _browser(hub, "carol") as attacker, _browser(hub, "bob") as victim:
        # A state nobody issued, with a `next` pointing away: refused, no redirect.
        r = victim.get(f"{PREFIX}oauth_callback",
                       params={"code": "x" * 30, "state": "forged", "next": "https://evil.example/"})  # fmt: skip
        assert r.status_code == 403
        assert "location" not in r.headers
        # Login CSRF: the attacker's genuine code and state, opened in the victim's browser
        # (which has no matching state cookie), do not sign the victim in.
        callback = _code_and_state(hub, attacker)
        r = victim.get(callback)
        assert r.status_code == 403
        assert r.headers["content-type"] == PROBLEM
        assert "service-nanorepo" not in victim.cookies
        assert victim.get(f"{PREFIX}health").status_code == 401  # still nobody here
        # Missing parameters and hub-reported errors are clear errors too.
        assert victim.get(f"{PREFIX}oauth_callback").status_code == 422
        denied = victim.get(f"{PREFIX}oauth_callback", params={"error": "access_denied"})
        assert denied.status_code == 403
        assert "access_denied" in denied.json()["detail"]


def test_callback_is_single_use_and_redirects_only_inside(jupyterhub: LiveHub) -> None:
    hub = jupyterhub
    with _browser(hub, "bob") as browser:
        callback = _code_and_state(hub, browser, f"{PREFIX}datasets?limit=1")
        state_cookie = browser.cookies["service-nanorepo-oauth-state"]
        done = browser.get(callback)
        assert done.status_code == 302
        assert done.headers["location"] == f"{PREFIX}datasets?limit=1"
        assert browser.get(callback).status_code == 403  # replay: the state cookie is gone
        # Replay with a copy of the state cookie: the hub refuses a code used once.
        with httpx.Client(base_url=hub.url, timeout=30) as thief:
            thief.cookies.set(
                "service-nanorepo-oauth-state", state_cookie, domain="127.0.0.1", path=PREFIX
            )
            replay = thief.get(callback)
            assert replay.status_code == 403
            assert "sign-in code" in replay.json()["detail"]
            assert "service-nanorepo" not in thief.cookies
        # A state cookie forged to match a state issued to someone else is refused too.
        with _browser(hub, "carol") as other:
            foreign = _code_and_state(hub, other)
        state = parse_qs(urlsplit(foreign).query)["state"][0]
        browser.cookies.set(
            "service-nanorepo-oauth-state", state + "x", domain="127.0.0.1", path=PREFIX
        )
        assert browser.get(foreign).status_code == 403


def test_login_state_cookie_is_sealed() -> None:
    """The state cookie carries the sign-in (any replica with the same hub token can
    finish it) and cannot be forged, altered or kept past its time."""
    login = _Login("st4te", f"{PREFIX}datasets", "verifier", int(time.time()) + 60)
    sealed = _LoginCookie("service-token").seal(login)
    assert _LoginCookie("service-token").open(sealed) == login  # another replica
    assert _LoginCookie("other-token").open(sealed) is None
    body, _, mac = sealed.partition(".")
    assert _LoginCookie("service-token").open(f"{body}x.{mac}") is None
    assert _LoginCookie("service-token").open("garbage") is None
    expired = _LoginCookie("service-token").seal(
        _Login("st4te", PREFIX, None, int(time.time()) - 1)
    )
    assert _LoginCookie("service-token").open(expired) is None


# -- configuration and the hub being down ----------------------------------------------


def test_identity_needs_hub_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JUPYTERHUB_CLIENT_ID", "JUPYTERHUB_SERVICE_NAME", "JUPYTERHUB_OAUTH_ACCESS_SCOPES",
                "JUPYTERHUB_OAUTH_SCOPES"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    settings = Settings.from_env(tmp_path, env={})
    with pytest.raises(ConfigurationError, match="hub API URL"):
        JupyterHubIdentity(settings)
    hubbed = settings.with_(hub_api_url="http://127.0.0.1:1/hub/api", hub_api_token="t" * 32)
    with pytest.raises(ConfigurationError, match="OAuth client is not configured"):
        JupyterHubIdentity(hubbed)


def test_hub_down_is_a_clear_error(sqlite_repo: Any, caplog: pytest.LogCaptureFixture) -> None:
    from jupyterhub.services.auth import HubOAuth

    with socket.socket() as sock:  # a loopback port nothing listens on (once closed)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api_url = f"http://127.0.0.1:{port}/hub/api"
    auth = HubOAuth(
        api_url=api_url,
        api_token="t" * 32,
        oauth_client_id="service-nanorepo",
        access_scopes={"access:services!service=nanorepo"},
        base_url=PREFIX,
    )
    identity = JupyterHubIdentity(sqlite_repo.settings, auth=auth)
    with sqlite_repo.catalog.session() as s, pytest.raises(HubUnavailable) as err:
        identity.principal_for_token(s, "0123456789abcdef0123456789abcdef")
    assert "did not answer" in err.value.message
    assert api_url not in str(err.value)  # callers do not learn internal addresses...
    assert err.value.hint
    assert any(api_url in r.getMessage() for r in caplog.records)  # ...the operator does
    assert isinstance(err.value, ConnectionError)
    assert status_of(err.value) >= 500


# -- the same tests on JupyterHub 5.5 ---------------------------------------------------


def test_runs_on_the_expected_jupyterhub(jupyterhub: LiveHub) -> None:
    """The hub (and the service, same interpreter) run the release this run is about."""
    import jupyterhub as jh

    expected = os.environ.get("NANOREPO_EXPECT_JUPYTERHUB") or jh.__version__
    assert jupyterhub.version.startswith(expected)
    assert jh.__version__.startswith(expected)


@pytest.mark.slow
def test_same_tests_pass_on_jupyterhub_5_5() -> None:
    """This module again, in ``.venv-hub55`` (JupyterHub 5.5 over this environment)."""
    started = time.monotonic()
    python = overlay_venv(ROOT / ".venv-hub55", "jupyterhub==5.5.*")
    env = {**os.environ, "NANOREPO_EXPECT_JUPYTERHUB": "5.5"}
    proc = subprocess.run(
        [str(python), "-m", "pytest", str(Path(__file__)), "-m", "not slow", "-q",
         "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, out
    assert " passed" in proc.stdout and " failed" not in proc.stdout, out
    print(f"JupyterHub 5.5 run: {time.monotonic() - started:.0f} s\n{proc.stdout[-300:]}")
