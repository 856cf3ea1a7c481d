"""Identity from JupyterHub: hub API tokens for notebooks, Hub OAuth for browsers.

When the service runs as a JupyterHub managed service the hub owns identity. A notebook
sends its hub token (``Authorization: token $JUPYTERHUB_API_TOKEN``); a browser signs in
once through the hub's OAuth flow (``{prefix}login`` → the hub's authorize page →
``{prefix}oauth_callback``) and then carries an HttpOnly cookie holding its OAuth token.
Either way the hub says who owns the token (``GET /hub/api/user``); the service maps the
answer to a :class:`~nanorepo.policy.Principal`:

- the token must carry the scope that lets its owner use this service
  (``access:services!service=<name>``, or ``access:services``), else 403;
- a hub admin is a repository admin; anyone else has their catalog role (reader when new);
- groups are the hub's groups united with the catalog's, so grants to a hub group work;
- the user gets a catalog row on first sight, so grants by name work before they call.

The hub client is :class:`jupyterhub.services.auth.HubOAuth`, the hub's own reference
implementation: it reads the configuration the hub hands its managed services
(``JUPYTERHUB_CLIENT_ID``, ``JUPYTERHUB_OAUTH_CALLBACK_URL``,
``JUPYTERHUB_OAUTH_ACCESS_SCOPES`` …), caches token lookups keyed by token (for
``NANOREPO_HUB_CACHE_S``, default 20 s and at most 30, instead of HubAuth's five minutes:
a hub round trip is paid once per token per 20 s, and a revoked token, a removed group or
a demoted admin stops counting within that bound) and behaves the same with JupyterHub 5.5 and 6.x. Its request
handlers are tornado's and cannot serve this FastAPI app, so the two OAuth routes are
written here after ``HubOAuthCallbackHandler``: its cookie names, its rule that the
``state`` must match this browser's state cookie, PKCE where the installed JupyterHub
offers it. One difference: the pending sign-in lives in the (signed) state cookie rather
than in process memory, so several replicas of the service can share the sign-in.

Cookie authentication is accepted only where JupyterHub accepts it without an XSRF token:
page navigations and same-origin ``no-cors`` reads (``GET``/``HEAD``). A script on another
user's server (same origin behind the hub's proxy) therefore cannot read the API with a
visitor's cookie; scripts use tokens.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlmodel import Session, select

from nanorepo.catalog.models import User
from nanorepo.errors import ConfigurationError, InvalidInput, PermissionDenied
from nanorepo.policy import Principal, principal_for_user
from nanorepo.settings import Settings

if TYPE_CHECKING:
    from jupyterhub.services.auth import HubOAuth

    from nanorepo.catalog import Catalog

__all__ = ["HubUnavailable", "JupyterHubIdentity", "cookie_auth_allowed", "safe_next_url"]

_log = logging.getLogger("nanorepo.service.hub")

#: What a hub token or OAuth token looks like; anything else is not sent to the hub.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{8,255}")
#: How long a sign-in may take between ``login`` and ``oauth_callback`` (as HubOAuth).
LOGIN_MAX_AGE_S = 600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class HubUnavailable(ConfigurationError, ConnectionError):
    """The hub did not answer, or refused the service's own credentials.

    A :class:`ConnectionError` too, so the service may answer it as 503 (it is a
    :class:`ConfigurationError`, 500, until the error mapping says otherwise).
    """


def safe_next_url(next_url: str | None, prefix: str) -> str:
    """``next_url`` if it is a same-origin path under ``prefix``; ``prefix`` when empty.

    Redirecting after sign-in to a URL taken from a request is how open redirects happen,
    so anything else is refused rather than repaired: absolute and scheme-relative URLs,
    backslashes (browsers read ``/\\evil`` as ``//evil``), control characters and spaces
    (browsers drop some of them), non-ASCII, and dot segments that could climb out of the
    prefix.

    Raises
    ------
    InvalidInput
        When ``next_url`` is not such a path.
    """
    if not next_url:
        return prefix
    bad = (
        len(next_url) > 2048
        or not next_url.isascii()
        or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in next_url)
        or "\\" in next_url
        or next_url.startswith("//")
    )
    if not bad:
        parts = urlsplit(next_url)
        segments = unquote(parts.path).split("/")
        bad = (
            bool(parts.scheme or parts.netloc)
            or not (parts.path.startswith(prefix) or parts.path == prefix.rstrip("/"))
            or "." in segments
            or ".." in segments
        )
    if bad:
        raise InvalidInput(
            f"`next` must be a path of this service (under {prefix}), not {next_url[:200]!r}",
            hint=f"use a relative URL such as {prefix}datasets, or leave `next` out",
        )
    return next_url


def cookie_auth_allowed(request: Request) -> bool:
    """Whether a cookie may authenticate ``request`` without an XSRF token.

    JupyterHub's rule (``jupyterhub._xsrf_utils._needs_check_xsrf``): read-only requests
    that are page navigations (or from clients that send no ``Sec-Fetch-Mode``), and
    same-origin ``no-cors`` reads such as ``<img>`` thumbnails, whose content the page
    cannot read.
    """
    if request.method not in _SAFE_METHODS:
        return False
    mode = request.headers.get("sec-fetch-mode", "unspecified")
    site = request.headers.get("sec-fetch-site", "unspecified")
    return mode in {"navigate", "unspecified"} or (mode == "no-cors" and site == "same-origin")


def _https(request: Request) -> bool:
    """Whether the browser reached us over https (directly or through the hub's proxy)."""
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    if forwarded == "https":
        return True
    return "proto=https" in request.headers.get("forwarded", "").lower()


@dataclass(frozen=True)
class _Login:
    """A sign-in between ``login`` and ``oauth_callback``: its OAuth state, where to return,
    the PKCE verifier (JupyterHub >= 6) and when it expires (Unix time, s)."""

    state: str
    next_url: str
    verifier: str | None
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _LoginCookie:
    """A sign-in in progress, kept in the browser's state cookie, signed (HMAC-SHA256).

    HubOAuth keeps pending sign-ins in process memory; a signed cookie instead lets any
    replica of the service (or a restarted one) finish a sign-in another started. The key
    derives from the service's hub token, which every replica shares and nobody else has.
    """

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"nanorepo oauth state\0" + secret.encode()).digest()

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def seal(self, login: _Login) -> str:
        body = json.dumps(
            [login.state, login.next_url, login.verifier, login.expires], separators=(",", ":")
        ).encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def open(self, value: str) -> _Login | None:
        """The sign-in ``value`` holds; ``None`` if forged, damaged or expired."""
        try:
            body_text, _, mac_text = value.partition(".")
            body = _unb64(body_text)
            if not hmac.compare_digest(_unb64(mac_text), self._mac(body)):
                return None
            state, next_url, verifier, expires = json.loads(body)
        except (ValueError, TypeError):
            return None
        if not isinstance(expires, int) or expires < time.time():
            return None
        return _Login(str(state), str(next_url), verifier, expires)


def _hub_oauth(settings: Settings) -> HubOAuth:
    """The hub client for ``settings``; the rest of its configuration from the hub's env."""
    if not settings.hub_api_url or not settings.hub_api_token:
        raise ConfigurationError(
            "JupyterHub identity needs the hub API URL and the service's hub token",
            hint="run the service as a JupyterHub managed service (the hub sets "
            "JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN)",
        )
    from jupyterhub.services.auth import HubOAuth
    from traitlets import TraitError

    try:
        auth = HubOAuth(
            api_url=settings.hub_api_url,
            api_token=settings.hub_api_token,
            base_url=settings.service_prefix,
            # the bound on how long a revoked token or a removed admin keeps working
            cache_max_age=settings.hub_cache_s,
        )
        problem = "" if auth.oauth_client_id else "no OAuth client id"
    except (TraitError, ValueError) as exc:
        problem = str(exc)
    if problem:
        raise ConfigurationError(
            f"the JupyterHub OAuth client is not configured: {problem}",
            hint="run the service as a JupyterHub managed service, or set "
            "JUPYTERHUB_CLIENT_ID and JUPYTERHUB_SERVICE_NAME as the hub would",
        )
    return auth


class JupyterHubIdentity:
    """Principals from JupyterHub tokens and OAuth cookies, and the OAuth sign-in routes.

    Parameters
    ----------
    settings:
        Must name the hub API (``hub_api_url``) and the service's own hub token
        (``hub_api_token``); ``service_prefix`` is where the routes live.
    auth:
        The hub client; by default a :class:`~jupyterhub.services.auth.HubOAuth` that reads
        the rest of its configuration (OAuth client id, callback URL, access scopes) from
        the environment the hub gives its managed services.

    Raises
    ------
    ConfigurationError
        When the hub configuration is incomplete.
    """

    def __init__(self, settings: Settings, *, auth: HubOAuth | None = None) -> None:
        auth = _hub_oauth(settings) if auth is None else auth
        self.auth: HubOAuth = auth
        self.required_scopes = frozenset(auth.access_scopes)
        if not self.required_scopes:
            raise ConfigurationError(
                "no hub scope grants access to this service",
                hint="set JUPYTERHUB_SERVICE_NAME (the hub sets it and "
                "JUPYTERHUB_OAUTH_ACCESS_SCOPES for its managed services)",
            )
        self.prefix: str = auth.base_url  # always ends with "/"
        self._login_cookie = _LoginCookie(auth.api_token)
        self._catalog: Catalog | None = None
        # HubAuth runs its hub requests on one background thread with its own event loop,
        # created lazily; create it now so concurrent first requests cannot race for it.
        _ = auth._pool

    # -- identity -----------------------------------------------------------------------

    def principal_for_token(self, s: Session, token: str) -> Principal | None:
        """The principal owning a hub token; ``None`` when the hub does not know it.

        Blocks on the hub (answers are cached): call it from a worker thread, as FastAPI
        does for synchronous dependencies.

        Raises
        ------
        PermissionDenied
            The token is valid but may not use this service, or belongs to a hub service.
        HubUnavailable
            The hub could not be asked.
        """
        model = self._user_model(token)
        return None if model is None else self._principal(s, model)

    def principal_for_cookie(self, s: Session, request: Request) -> Principal | None:
        """The principal of the OAuth cookie set by ``oauth_callback``; ``None`` when there
        is none, it has expired, or the request may not authenticate by cookie
        (:func:`cookie_auth_allowed`)."""
        token = request.cookies.get(self.auth.cookie_name)
        if not token or not cookie_auth_allowed(request):
            return None
        return self.principal_for_token(s, token)

    def _user_model(self, token: str) -> dict[str, Any] | None:
        if not _TOKEN.fullmatch(token):
            return None
        from tornado.web import HTTPError

        try:
            model: dict[str, Any] | None = self.auth.user_for_token(token, sync=True)
        except HTTPError as exc:
            raise self._hub_error(exc, "could not check a token") from exc
        if model is None:
            return None
        kind, name = model.get("kind", "user"), model.get("name")
        if kind != "user" or not isinstance(name, str) or not name:
            raise PermissionDenied(
                f"the token belongs to the hub {kind} {name!r}, not to a user",
                hint="nanorepo acts for people: send a user's token",
            )
        from jupyterhub.services.auth import check_scopes

        if not check_scopes(set(self.required_scopes), set(model.get("scopes") or ())):
            need = " or ".join(sorted({*self.required_scopes, "access:services"}))
            raise PermissionDenied(
                f"hub user {name!r} may not use this service: the token lacks the scope {need}",
                hint="ask the hub administrator for a role with that scope (or create a "
                "token that includes it)",
            )
        return model

    def _principal(self, s: Session, model: dict[str, Any]) -> Principal:
        name: str = model["name"]
        self._ensure_user(s, name)
        base = principal_for_user(s, name, admin=model.get("admin") is True)
        hub_groups = frozenset(g for g in model.get("groups") or () if isinstance(g, str))
        return Principal(name, base.role, base.groups | hub_groups)

    def _ensure_user(self, s: Session, name: str) -> None:
        """Give a hub user a catalog row (role reader) the first time they are seen."""
        if s.exec(select(User.id).where(User.name == name)).first() is not None:
            return
        if self._catalog is None:
            raise ConfigurationError(
                "the hub identity is not installed in the service",
                hint="create the app with nanorepo.service.create_app",
            )
        try:
            self._catalog.ensure_user(s, name)
            s.commit()
        except SAIntegrityError:  # a concurrent request created the row first
            s.rollback()

    def _hub_error(self, exc: Exception, doing: str) -> HubUnavailable:
        """The error for callers (no internal addresses in it); the details go to the log
        for the operator."""
        detail = getattr(exc, "log_message", None) or str(exc)
        _log.error("JupyterHub %s at %s: %s", doing, self.auth.api_url, detail)
        return HubUnavailable(
            f"JupyterHub {doing}: the hub did not answer, or refused this service",
            hint="try again in a moment; if it persists, tell the operator (the service "
            "log says which hub address failed and why)",
        )

    # -- OAuth sign-in routes --------------------------------------------------------

    def install(self, app: FastAPI) -> None:
        """Add ``GET {prefix}login`` and ``GET {prefix}oauth_callback`` to ``app``.

        They are browser redirects, not API operations, so they stay out of the OpenAPI
        document.
        """
        self._catalog = app.state.nanorepo.repo.catalog
        app.add_api_route(
            f"{self.prefix}login", self.login, methods=["GET"], include_in_schema=False
        )
        app.add_api_route(
            f"{self.prefix}oauth_callback",
            self.oauth_callback,
            methods=["GET"],
            include_in_schema=False,
        )
        app.add_api_route(
            f"{self.prefix}logout", self.logout, methods=["GET", "POST"], include_in_schema=False
        )

    def _set_cookie(
        self, response: Response, request: Request, name: str, value: str, **kw: Any
    ) -> None:
        response.set_cookie(
            name,
            value,
            path=self.auth.cookie_path,
            httponly=True,
            samesite="lax",
            secure=_https(request) or self.auth.cookie_host_prefix_enabled,
            **kw,
        )

    async def login(self, request: Request) -> Response:
        """Start signing in: remember where to return (``next``, a path of this service)
        and redirect to the hub's authorize page with a fresh OAuth state."""
        next_url = safe_next_url(request.query_params.get("next"), self.prefix)
        params: dict[str, str] = {}
        verifier: str | None = None
        if getattr(self.auth, "pkce_enabled", False):  # JupyterHub >= 6 clients
            verifier, challenge, method = self.auth.generate_pkce_code_challenge()
            params |= {"code_challenge": challenge, "code_challenge_method": method}
        state = secrets.token_urlsafe(16)
        cookie_name = self.auth.state_cookie_name
        if cookie_name in request.cookies:  # another sign-in in progress in this browser
            cookie_name = f"{cookie_name}-{secrets.token_hex(4)}"
        login = _Login(state, next_url, verifier, int(time.time()) + LOGIN_MAX_AGE_S)
        params["state"] = state
        login_url: str = self.auth.login_url
        sep = "&" if "?" in login_url else "?"
        response = RedirectResponse(f"{login_url}{sep}{urlencode(params)}", status_code=302)
        response.headers["Cache-Control"] = "no-store"
        self._set_cookie(
            response, request, cookie_name, self._login_cookie.seal(login), max_age=LOGIN_MAX_AGE_S
        )
        return response

    async def oauth_callback(self, request: Request) -> Response:
        """Finish signing in: check the state against this browser's state cookie, trade
        the code for a token, check the token's owner and scopes, set the cookie and
        return to the page the sign-in started from."""
        q = request.query_params
        if q.get("error"):
            raise PermissionDenied(
                f"the hub did not sign you in: {(q.get('error_description') or q['error'])[:200]}",
                hint=f"sign in again at {self.prefix}login",
            )
        code, state = q.get("code"), q.get("state")
        if not code or not state:
            raise InvalidInput(
                "the OAuth callback needs `code` and `state`",
                hint=f"start signing in at {self.prefix}login",
            )
        pending = self._pending_login(request, state)
        if pending is None:
            raise PermissionDenied(
                "the OAuth state does not match a sign-in started in this browser",
                hint=f"start signing in again at {self.prefix}login",
            )
        token = await asyncio.to_thread(self._token_for_code, code, pending.verifier)
        if await asyncio.to_thread(self._user_model, token) is None:
            raise HubUnavailable(
                "JupyterHub issued a token it does not recognise",
                hint="try signing in again; if it persists, check the hub's log",
            )
        response = RedirectResponse(safe_next_url(pending.next_url, self.prefix), 302)
        response.headers["Cache-Control"] = "no-store"
        self._set_cookie(response, request, self.auth.cookie_name, token)
        for name in request.cookies:  # every sign-in of this browser is over
            if name.startswith(self.auth.state_cookie_name):
                response.delete_cookie(
                    name,
                    path=self.auth.cookie_path,
                    secure=_https(request) or self.auth.cookie_host_prefix_enabled,
                    httponly=True,
                    samesite="lax",
                )
        return response

    async def logout(self, request: Request) -> Response:
        """Sign out of the service: clear its cookie (and forget the hub's answer about
        its token), then go on to the hub's own logout page, which ends the hub session.

        The cookie's token stays valid at the hub until the hub logs out; clearing it here
        means this browser no longer sends it.
        """
        token = request.cookies.get(self.auth.cookie_name)
        if token:  # HubAuth keys its answer by the token's SHA-256
            self.auth.cache.pop(f"token::{hashlib.sha256(token.encode()).hexdigest()}", None)
        hub_logout = f"{self.auth.hub_host}{self.auth.hub_prefix}logout"
        response = RedirectResponse(hub_logout, 303)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Clear-Site-Data"] = '"cookies"'
        response.delete_cookie(
            self.auth.cookie_name,
            path=self.auth.cookie_path,
            secure=_https(request) or self.auth.cookie_host_prefix_enabled,
            httponly=True,
            samesite="lax",
        )
        return response

    def _pending_login(self, request: Request, state: str) -> _Login | None:
        """The sign-in of this browser whose state is ``state`` (its state cookies are
        checked: a state from another browser, or a forged cookie, finds nothing)."""
        for name, value in request.cookies.items():
            if name.startswith(self.auth.state_cookie_name):
                login = self._login_cookie.open(value)
                if login is not None and hmac.compare_digest(login.state.encode(), state.encode()):
                    return login
        return None

    def _token_for_code(self, code: str, verifier: str | None) -> str:
        from tornado.web import HTTPError

        kwargs = {"code_verifier": verifier} if verifier else {}
        try:
            token: str = self.auth.token_for_code(code, sync=True, **kwargs)
        except HTTPError as exc:
            message = str(getattr(exc, "log_message", "") or "")
            if exc.status_code == 500 and message.startswith("Failed to check authorization"):
                raise PermissionDenied(  # the hub refused the code: expired, reused, forged
                    f"the hub did not accept the sign-in code: {message}",
                    hint=f"start signing in again at {self.prefix}login",
                ) from exc
            raise self._hub_error(exc, "could not complete the sign-in") from exc
        return token
