"""Lab accounts: NativeAuthenticator, with the first admin account and a fix for
JupyterHub 6.

jupyterhub-nativeauthenticator is chosen for the local hub because a lab needs accounts
without an identity provider: people sign up at ``/hub/signup``, an admin approves them
at ``/hub/authorize``, passwords are stored bcrypt-hashed in the hub's database, repeated
failed logins are slowed down, and users change their password at
``/hub/change-password``. Its release 1.3.0 predates JupyterHub 6, whose handlers no
longer carry a statsd client (jupyterhub/jupyterhub#5407) and which renders error pages
synchronously; :class:`_LoginHandler` is its login page without those two assumptions.

What nanorepo adds (templates in ``nanorepo/hub/templates``, found through
``JupyterHub.template_paths``, see :func:`nanorepo.hub.configure`):

- **Sign-up asks who you are**: name, e-mail, affiliation (required) and ORCID iD
  (optional, checked: format and ISO 7064 check digit). They are kept in the hub's
  database (table ``nanorepo_profiles``) next to NativeAuthenticator's ``users_info``; a
  sign-up with a bad field says which and how to fix it, and creates nothing.
- **Approval shows them**: ``/hub/authorize`` lists each account with its name,
  affiliation, e-mail and ORCID, pending sign-ups first. An admin's own row offers no
  *Unauthorize*, and ``/hub/authorize/<self>`` refuses to unauthorize the admin who asks
  (NativeAuthenticator toggles on a plain GET: one stray click locked the admin out).
- **Pending sign-ups for the repository's landing page**: ``GET /hub/api/nanorepo/signups``
  (scope ``custom:nanorepo:signups``, given to the nanorepo service) lists the accounts
  waiting for approval.
"""

from __future__ import annotations

import json
import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.login import LoginHandler as HubLoginHandler
from jupyterhub.orm import Base
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import (
    AuthorizationAreaHandler,
    SignUpHandler,
    ToggleAuthorizationHandler,
)
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from nativeauthenticator.orm import UserInfo
from sqlalchemy import Column, DateTime, String
from tornado import web
from traitlets import Bool, Unicode

__all__ = ["SIGNUPS_SCOPE", "TEMPLATES", "NanorepoAuthenticator", "Profile", "check_profile"]

#: The hub's custom scope that lets its holder (the nanorepo service) list pending sign-ups.
SIGNUPS_SCOPE = "custom:nanorepo:signups"
#: nanorepo's hub templates (the navigation, sign-up and approval pages).
TEMPLATES = Path(__file__).parent / "templates"

_EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}")
_ORCID_RE = re.compile(r"(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])")
_MAX_TEXT = 200


class ProfileRow(Base):
    """Who signed up, in the hub's database (created with the hub's own tables)."""

    __tablename__ = "nanorepo_profiles"
    username = Column(String(128), primary_key=True)
    name = Column(String(_MAX_TEXT), nullable=False, default="")
    email = Column(String(254), nullable=False, default="")
    affiliation = Column(String(_MAX_TEXT), nullable=False, default="")
    orcid = Column(String(19), nullable=False, default="")
    created = Column(DateTime, nullable=False, default=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Profile:
    """What a person says about themselves at sign-up."""

    name: str
    email: str
    affiliation: str
    orcid: str = ""


def _orcid_checksum_ok(digits: str) -> bool:
    """ISO 7064 11,2 over the first 15 digits, as ORCID defines its check character."""
    total = 0
    for ch in digits[:-1]:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    return digits[-1] == ("X" if check == 10 else str(check))


def check_profile(name: str, email: str, affiliation: str, orcid: str) -> Profile:
    """The sign-up's profile, or :class:`ValueError` saying which field is wrong and how to
    write it."""
    name, email, affiliation, orcid = (v.strip() for v in (name, email, affiliation, orcid))
    for label, value in (("Name", name), ("Affiliation", affiliation)):
        if not value:
            raise ValueError(f"{label} is required.")
        if len(value) > _MAX_TEXT or any(ord(c) < 32 for c in value):
            raise ValueError(f"{label} must be at most {_MAX_TEXT} printable characters.")
    if not _EMAIL_RE.fullmatch(email):
        raise ValueError("E-mail must be an address such as ada@lab.example.org.")
    if orcid:
        m = _ORCID_RE.fullmatch(orcid)
        if not m or not _orcid_checksum_ok(m.group(1).replace("-", "")):
            raise ValueError(
                "ORCID iD must look like 0000-0002-1825-0097 (16 digits, the last may be X) "
                "with a valid check digit; leave it empty if you have none."
            )
        orcid = m.group(1)
    return Profile(name=name, email=email, affiliation=affiliation, orcid=orcid)


def _profiles(db: Any) -> dict[str, ProfileRow]:
    return {p.username: p for p in db.query(ProfileRow).all()}


class _SignUpHandler(SignUpHandler):
    """``/hub/signup`` asking for name, e-mail, affiliation and (optionally) ORCID."""

    async def get(self) -> None:
        if not self.authenticator.enable_signup:
            raise web.HTTPError(404)
        self.finish(await self._page())

    async def _page(self, **kw: Any) -> str:
        html: str = await self.render_template(
            "nanorepo-signup.html",
            two_factor_auth=self.authenticator.allow_2fa,
            tos=self.authenticator.tos,
            recaptcha_key=self.authenticator.recaptcha_key,
            **kw,
        )
        return html

    async def post(self) -> None:
        if not self.authenticator.enable_signup:
            raise web.HTTPError(404)
        arg = self.get_body_argument
        fields = {k: arg(k, "", strip=False) for k in ("name", "email", "affiliation", "orcid")}
        username = self.authenticator.normalize_username(arg("username", "", strip=False))
        try:
            profile = check_profile(**fields)
        except ValueError as e:
            self.finish(
                await self._page(
                    alert="alert-danger", result_message=str(e), username=username, form=fields
                )
            )
            return
        existed = self.authenticator.user_exists(username)
        await super().post()  # NativeAuthenticator's checks, account and answer page
        if not existed and self.authenticator.user_exists(username):
            self.db.merge(ProfileRow(username=username, **profile.__dict__))
            self.db.commit()

    def render_template(self, template: str, *args: Any, **ns: Any) -> Any:
        # NativeAuthenticator's post renders its own page: show ours instead
        if template == "signup.html":
            template = "nanorepo-signup.html"
        return super().render_template(template, *args, **ns)


class _AuthorizationAreaHandler(AuthorizationAreaHandler):
    """``/hub/authorize``: accounts with who they are, pending first; no self-unauthorize."""

    async def get(self) -> None:
        if not self.current_user or not self.current_user.admin:
            raise web.HTTPError(403)
        users = sorted(self.db.query(UserInfo).all(), key=lambda u: (u.is_authorized, u.username))
        html = await self.render_template(
            "nanorepo-authorize.html",
            users=users,
            profiles=_profiles(self.db),
            me=self.current_user.name,
        )
        self.finish(html)


class _ToggleAuthorizationHandler(ToggleAuthorizationHandler):
    """``/hub/authorize/<name>``: toggles, except that an admin cannot unauthorize
    themselves (they would be locked out by one click)."""

    async def get(self, slug: str) -> None:
        if self.current_user is not None and slug == self.current_user.name:
            info = UserInfo.find(self.db, slug)
            if info is not None and info.is_authorized:
                raise web.HTTPError(
                    400,
                    "You cannot unauthorize your own account: you would be locked out. "
                    "Ask another admin, or remove yourself from admin_users first.",
                )
        await super().get(slug)


class _SignupsAPIHandler(APIHandler):
    """``GET /hub/api/nanorepo/signups``: accounts waiting for approval, with profiles."""

    def get(self) -> None:
        # (custom scopes exist only once the hub has loaded them: checked here, not by
        # jupyterhub.scopes.needs_scope, which validates its scope at import)
        if self.current_user is None or SIGNUPS_SCOPE not in self.parsed_scopes:
            raise web.HTTPError(403, f"listing sign-ups needs the scope {SIGNUPS_SCOPE}")
        profiles = _profiles(self.db)
        items = []
        for u in self.db.query(UserInfo).filter(UserInfo.is_authorized.is_(False)).all():
            p = profiles.get(u.username)
            items.append(
                {
                    "username": u.username,
                    "email": (p.email if p else "") or (u.email or ""),
                    "name": p.name if p else "",
                    "affiliation": p.affiliation if p else "",
                    "orcid": p.orcid if p else "",
                }
            )
        items.sort(key=lambda i: i["username"])
        self.finish(json.dumps({"items": items}))


class _LoginHandler(NativeLoginHandler):
    """NativeAuthenticator's ``/hub/login`` for JupyterHub 5 and 6."""

    def _render(
        self, login_error: str | None = None, username: str | None = None, **kw: Any
    ) -> Any:
        if kw.get("sync"):  # an error page rendered synchronously: the hub's own login
            return HubLoginHandler._render(self, login_error=login_error, username=username, **kw)
        return super()._render(login_error=login_error, username=username)

    async def post(self) -> None:
        data = {arg: self.get_argument(arg, strip=False) for arg in self.request.arguments}
        user = await self.login_user(data)
        if user:
            self._jupyterhub_user = user
            self.redirect(self.get_next_url(user))
            return
        error = "Invalid username or password."
        username = data.get("username", "")
        info = self.authenticator.get_user(username)
        if (
            info is not None
            and not info.is_authorized
            and info.is_valid_password(data.get("password", ""))
        ):
            error = f"User {username} has not been authorized by an administrator yet."
        self.finish(await self._render(login_error=error, username=username))


class NanorepoAuthenticator(NativeAuthenticator):
    """NativeAuthenticator that creates the first admin account on the first start.

    The password comes from :attr:`first_password_file`, written by ``nanorepo up``
    (which prints it once); the account is stored like every NativeAuthenticator
    account (bcrypt hash, authorised) and the file is deleted.
    """

    ask_email_on_signup = Bool(
        True, help="Ask for an e-mail address at sign-up (nanorepo asks it always)."
    ).tag(config=True)

    first_password_file = Unicode(
        "",
        help="""A file holding the first password of the admin account (the first of
        admin_users), read and deleted at start when that account does not exist yet.""",
    ).tag(config=True)

    def get_handlers(self, app: Any) -> list[tuple[str, type]]:
        """NativeAuthenticator's pages (login fixed for JupyterHub 6; sign-up and approval
        with profiles; no self-unauthorize) and the pending sign-ups API."""
        ours: dict[str, type] = {
            "/login": _LoginHandler,
            "/signup": _SignUpHandler,
            "/authorize": _AuthorizationAreaHandler,
            "/authorize/([^/]*)": _ToggleAuthorizationHandler,
        }
        handlers = [(url, ours.get(url, h)) for url, h in super().get_handlers(app)]
        return [*handlers, ("/api/nanorepo/signups", _SignupsAPIHandler)]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_first_admin()

    def _create_first_admin(self) -> None:
        if not self.first_password_file or not self.admin_users:
            return
        path = Path(self.first_password_file)
        try:
            password = path.read_text().strip()
        except FileNotFoundError:
            return
        import bcrypt
        from nativeauthenticator.orm import UserInfo

        name = self.normalize_username(sorted(self.admin_users)[0])
        if password and UserInfo.find(self.db, name) is None:
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
            self.db.add(UserInfo(username=name, password=hashed, is_authorized=True))
            self.db.commit()
            self.log.info("nanorepo: created the admin account %r", name)
        with suppress(FileNotFoundError):
            path.unlink()
