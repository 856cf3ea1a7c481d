"""Commands about the service and access: ``serve``, ``token``, ``user``, ``grant``,
``release``, ``embargo``.

``serve``, ``token`` and ``user`` are operator commands: they act on the local repository
(its catalog) and never on a remote service. ``grant``, ``release`` and ``embargo`` act
wherever the front door (:mod:`nanorepo.connection`) reaches the repository: the local one,
or the service (which checks that the caller may).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
from rich.console import Console

from nanorepo.errors import InvalidInput

if TYPE_CHECKING:
    from nanorepo.cli._context import Context as _Ctx

__all__ = ["COMMANDS"]

err = Console(stderr=True, highlight=False)

_ROLES = ["reader", "depositor", "curator", "admin"]


@click.command("serve")
@click.option("--host", help="Interface to listen on. Default: 127.0.0.1 (or the hub's).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port. Default: 8000, or the port of JUPYTERHUB_SERVICE_URL under a hub.",
)
@click.option("--hub-service-url", envvar="JUPYTERHUB_SERVICE_URL", hidden=True)
@click.pass_obj
def serve_cmd(c: _Ctx, host: str | None, port: int | None, hub_service_url: str | None) -> None:
    """(operator) Run the REST service on this repository until stopped (Ctrl-C, SIGTERM).

    Under JupyterHub (as a managed service) it listens where JUPYTERHUB_SERVICE_URL says,
    under JUPYTERHUB_SERVICE_PREFIX, and takes identities from the hub; standalone it
    takes tokens from `nanorepo token create`.
    """
    import uvicorn

    from nanorepo.repository import catalog_exists, no_repository
    from nanorepo.service import create_app

    # Serving creates nothing: a missing repository is a clear error here, not a traceback
    # from the app's startup after the address was already printed.
    if not catalog_exists(c.settings.database_url):
        raise no_repository(c.settings)
    if hub_service_url:
        hub = urlsplit(hub_service_url)
        host = host or hub.hostname
        port = port or hub.port
    host, port = host or "127.0.0.1", port or 8000
    app = create_app(c.settings)
    prefix = c.settings.service_prefix.rstrip("/")
    shown = f"[{host}]" if ":" in host else host
    err.print(f"nanorepo service at http://{shown}:{port}{prefix}/ (home {c.settings.home})")
    # uvicorn: the ASGI server FastAPI is built for; on SIGTERM it finishes the requests
    # in flight, runs the app's shutdown and exits 0.
    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="on")


@click.group("token")
def token_group() -> None:
    """(operator) Issue and revoke API tokens of the standalone service (local catalog)."""


@token_group.command("create")
@click.argument("user")
@click.option("--role", type=click.Choice(_ROLES), help="Also set USER's role.")
@click.option("--admin", is_flag=True, help="Same as --role admin.")
@click.option("--note", default="", help="What the token is for (kept with it).")
@click.option("--expires-days", type=click.IntRange(min=1), help="Expire after N days.")
@click.pass_obj
def token_create_cmd(
    c: _Ctx, user: str, role: str | None, admin: bool, note: str, expires_days: int | None
) -> None:
    """Issue a token for USER (created if new). The token is printed once, alone on stdout,
    so it can be captured: TOKEN=$(nanorepo token create bob)."""
    from nanorepo.policy import Role, create_token, principal_for_user

    if admin and role not in (None, "admin"):
        raise InvalidInput(f"--admin and --role {role} contradict each other", hint="give one")
    chosen = Role.admin if admin else Role.parse(role) if role else None
    cat = c.repo.catalog
    with cat.session() as s:
        token = create_token(
            s, user, role=chosen, note=note,
            expires_in=timedelta(days=expires_days) if expires_days else None,
        )  # fmt: skip
        s.commit()
        effective = principal_for_user(s, user).role.name
    until = f", expires in {expires_days} day(s)" if expires_days else ""
    err.print(f"token for {user} (role {effective}{until}); it is shown only this once:")
    click.echo(token)


@token_group.command("revoke")
@click.argument("user")
@click.pass_obj
def token_revoke_cmd(c: _Ctx, user: str) -> None:
    """Revoke every token of USER."""
    from nanorepo.policy import revoke_tokens

    cat = c.repo.catalog
    with cat.session() as s:
        n = revoke_tokens(s, user)
        s.commit()
    err.print(f"revoked {n} token(s) of {user}")


@click.group("user")
def user_group() -> None:
    """(operator) Manage users of the local catalog."""


@user_group.command("role")
@click.argument("user")
@click.argument("role", type=click.Choice(_ROLES))
@click.pass_obj
def user_role_cmd(c: _Ctx, user: str, role: str) -> None:
    """Set USER's role: reader, depositor (may deposit), curator, admin."""
    from sqlmodel import select

    from nanorepo.catalog.models import User
    from nanorepo.policy import Role

    Role.parse(role)
    cat = c.repo.catalog
    with cat.session() as s:
        old = s.exec(select(User.role).where(User.name == user)).first()
        cat.ensure_user(s, user, role)
        s.commit()
    err.print(f"{user}: {old or '(new user)'} -> {role}")


@click.command("grant")
@click.argument("accession")
@click.option("--user", "user", help="The user to give access.")
@click.option("--group", "group", help="The group to give access.")
@click.option("--revoke", is_flag=True, help="Withdraw the grant instead.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def grant_cmd(
    c: _Ctx, accession: str, user: str | None, group: str | None, revoke: bool, as_json: bool
) -> None:
    """Give a user or a group access to an embargoed dataset (or --revoke it).

    With NANOREPO_URL set this asks the service, as the token's user (the dataset's owner,
    a curator or an admin); otherwise it changes the local repository.
    """
    if (user is None) == (group is None):
        raise InvalidInput("name either --user or --group", hint="e.g. --user bob or --group lab")
    kind, who = ("user", user) if user is not None else ("group", str(group))
    if not re.fullmatch(r"[A-Za-z0-9._@+\-]{1,255}", who):
        raise InvalidInput(
            f"{who!r} is not a valid {kind} name", hint="use letters, digits and . _ @ + -"
        )
    result: dict[str, Any] = {"accession": accession, "kind": kind, "principal": who}
    if revoke:
        c.conn.revoke(accession, kind, who)
    else:
        result.update(c.conn.grant(accession, kind, who))
    result["revoked" if revoke else "granted"] = True
    if as_json:
        click.echo(_dumps(result))
        return
    err.print(
        f"{'revoked' if revoke else 'granted'} {kind} {who} "
        f"{'from' if revoke else 'access to'} {accession}"
    )


@click.command("release")
@click.argument("accession")
@click.option("--reason", required=True, help="Why (kept in the history).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def release_cmd(c: _Ctx, accession: str, reason: str, as_json: bool) -> None:
    """End the embargo of a dataset now: it becomes public on every channel.

    With NANOREPO_URL set this asks the service (owners, curators, admins may).
    """
    _print_access(c.conn.release(accession, reason=reason), as_json)


@click.command("embargo")
@click.argument("accession")
@click.option(
    "--until", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="YYYY-MM-DD."
)
@click.option("--reason", required=True, help="Why (kept in the history).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def embargo_cmd(c: _Ctx, accession: str, until: Any, reason: str, as_json: bool) -> None:
    """Put a dataset (back) under embargo until a date (curators; owners at deposit).

    With NANOREPO_URL set this asks the service (curators and admins may).
    """
    day: date = until.date()
    if day <= date.today():
        raise InvalidInput(f"--until {day} is not in the future", hint="give a later date")
    _print_access(c.conn.embargo(accession, day, reason=reason), as_json)


def _print_access(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(_dumps(summary))
        return
    until = f" until {summary['embargo_until']}" if summary.get("embargo_until") else ""
    err.print(f"{summary['accession']} is now {summary['access']}{until}")


def _dumps(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


#: Added to the ``nanorepo`` group by :mod:`nanorepo.cli._main`.
COMMANDS = [serve_cmd, token_group, user_group, grant_cmd, release_cmd, embargo_cmd]
