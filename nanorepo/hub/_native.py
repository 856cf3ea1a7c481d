"""Lab accounts: NativeAuthenticator, with the first admin account and a fix for
JupyterHub 6.

jupyterhub-nativeauthenticator is chosen for the local hub because a lab needs accounts
without an identity provider: people sign up at ``/hub/signup``, an admin approves them
at ``/hub/authorize``, passwords are stored bcrypt-hashed in the hub's database, repeated
failed logins are slowed down, and users change their password at
``/hub/change-password``. Its release 1.3.0 predates JupyterHub 6, whose handlers no
longer carry a statsd client (jupyterhub/jupyterhub#5407) and which renders error pages
synchronously; :class:`_LoginHandler` is its login page without those two assumptions.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

from jupyterhub.handlers.login import LoginHandler as HubLoginHandler
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from traitlets import Unicode

__all__ = ["NanorepoAuthenticator"]


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

    first_password_file = Unicode(
        "",
        help="""A file holding the first password of the admin account (the first of
        admin_users), read and deleted at start when that account does not exist yet.""",
    ).tag(config=True)

    def get_handlers(self, app: Any) -> list[tuple[str, type]]:
        """NativeAuthenticator's pages, with the login page fixed for JupyterHub 6."""
        return [
            (url, _LoginHandler if url == "/login" else h) for url, h in super().get_handlers(app)
        ]

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
