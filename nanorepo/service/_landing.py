"""The service's landing page: what the repository holds, for people.

``GET {prefix}/`` (``/services/nanorepo/`` on the hub, ``/`` standalone) answers a browser
with one server-rendered HTML page: how many datasets and images the viewer may see, the
terabytes per imaging technique, the most recent datasets with a link that opens each in
JupyterLab's Repository panel (``/hub/user-redirect/lab?nanorepo-dataset=ACC``; the Lab
extension reads the parameter), and for admins the sign-ups waiting for approval.

Everything is counted through :func:`~nanorepo.policy.visible_clause`, the clause every
list and facet uses, so a dataset under embargo is neither listed nor counted for a viewer
who may not see it. Every text is escaped (:func:`html.escape`); the page has no script and
its Content-Security-Policy allows only its own stylesheet and same-origin thumbnails.
On a hub, a visitor the service does not know yet (no service cookie) gets the public view
and a *Sign in* link through the service's OAuth sign-in (``{prefix}/login``) and back;
when the service refuses anonymous visitors, the page sends them there at once.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session, col

import nanorepo.catalog._queries as queries
from nanorepo import __version__
from nanorepo.catalog.models import Dataset
from nanorepo.policy import Principal, Role, visible_clause
from nanorepo.service._app import state_of
from nanorepo.service._identity import resolve_principal
from nanorepo.service._problems import Unauthenticated
from nanorepo.settings import Settings

__all__ = [
    "Holdings",
    "PendingSignup",
    "holdings",
    "hub_pending_signups",
    "install_landing",
    "render_landing",
]

log = logging.getLogger("nanorepo.service")

#: How many recent datasets the page lists.
RECENT = 8
#: The page's policy: no script at all; its stylesheet and thumbnails from this origin.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
_CSS = "_static/landing.css"


@dataclass(frozen=True)
class PendingSignup:
    """An account waiting for an admin's approval (from the hub's sign-up page)."""

    username: str
    email: str = ""
    name: str = ""
    affiliation: str = ""
    orcid: str = ""


@dataclass(frozen=True)
class Recent:
    """A recently created dataset as the page lists it."""

    accession: str
    title: str
    version: int
    access: str
    embargo_until: str | None
    created: str
    thumbnail: str | None


@dataclass(frozen=True)
class Holdings:
    """What ``viewer`` may see: dataset and image counts, bytes per technique, recent
    datasets (newest first)."""

    viewer: str | None
    datasets: int
    images: int
    bytes_by_technique: dict[str, int] = field(default_factory=dict)
    recent: list[Recent] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_technique.values())


def _visible(p: Principal) -> Any:
    clause = visible_clause(p)
    return clause if p.privileged else clause & (col(Dataset.state) != "takedown")


def holdings(s: Session, p: Principal, *, recent: int = RECENT) -> Holdings:
    """Count what ``p`` may see: the latest version of every visible dataset."""
    where = _visible(p)
    n_datasets = queries.count_datasets(s, where)
    by_technique: dict[str, int] = {}
    n_images = 0
    for technique, count, size in queries.latest_images_by_technique(s, where):
        by_technique[technique or "unspecified"] = size
        n_images += count
    rows = queries.newest_datasets(s, where, recent)
    first = queries.first_images(s, rows)
    items = []
    for ds in rows:
        name = first.get(ds.id or 0)
        thumb = (
            f"datasets/{ds.accession}/versions/v{ds.latest_version}/images/{name}/thumbnail.png"
            if name
            else None
        )
        items.append(
            Recent(
                accession=ds.accession,
                title=ds.title,
                version=ds.latest_version,
                access=ds.access,
                embargo_until=ds.embargo_until.isoformat() if ds.embargo_until else None,
                created=ds.created.date().isoformat(),
                thumbnail=thumb,
            )
        )
    return Holdings(
        viewer=p.name if p.authenticated else None,
        datasets=n_datasets,
        images=n_images,
        bytes_by_technique=dict(sorted(by_technique.items(), key=lambda kv: (-kv[1], kv[0]))),
        recent=items,
    )


def hub_base(service_prefix: str) -> str | None:
    """The hub's base URL (``/`` or ``/jhub/``) when the service runs under a hub's
    ``/services/NAME/`` prefix, else ``None``."""
    head, sep, _ = service_prefix.partition("/services/")
    return f"{head}/" if sep else None


def lab_link(hub: str, accession: str) -> str:
    """Where a hub user opens ``accession`` in their own JupyterLab: the Repository panel
    shows its dataset page (the extension reads ``nanorepo-dataset``)."""
    return f"{hub}hub/user-redirect/lab?{urlencode({'nanorepo-dataset': accession})}"


def terabytes(n: int) -> str:
    """``n`` bytes as TB (decimal, as storage is sold), with GB/MB for small holdings."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size or unit == "MB":
            return f"{n / size:,.{2 if n < 100 * size else 0}f} {unit}"
    return f"{n} B"  # pragma: no cover


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def render_landing(
    h: Holdings,
    *,
    prefix: str,
    hub: str | None,
    pending: list[PendingSignup] | None = None,
) -> str:
    """The landing page's HTML (every value escaped; no script)."""
    p = prefix.rstrip("/") + "/"
    out: list[str] = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>nanorepo: open reference data for nanoscopy</title>",
        f'<link rel="stylesheet" href="{_e(p + _CSS)}"></head><body>',
        '<header class="nr-top"><h1>nanorepo</h1>',
        "<p>An open reference data repository for super-resolution microscopy: datasets "
        "with sealed, versioned metadata, read in place from notebooks and napari.</p>",
        '<p class="nr-who">',
    ]
    if h.viewer:
        out.append(f"Signed in as <strong>{_e(h.viewer)}</strong>.")
    else:
        out.append("Not signed in: only public datasets are shown.")
        if hub:
            login = f"{p}login?{urlencode({'next': p})}"
            out.append(f' <a class="nr-signin" href="{_e(login)}">Sign in</a> ·')
    if hub:
        out.append(f' <a href="{_e(hub)}hub/home">Hub home</a>')
        out.append(f' · <a href="{_e(hub)}hub/user-redirect/lab">Open JupyterLab</a>')
    out.append("</p></header><main>")
    out.append('<section class="nr-counts" aria-label="What the repository holds">')
    for value, label in (
        (f"{h.datasets:,}", "datasets"),
        (f"{h.images:,}", "images"),
        (terabytes(h.total_bytes), "of images"),
    ):
        out.append(f'<div class="nr-count"><span>{_e(value)}</span> {_e(label)}</div>')
    out.append("</section>")
    if h.bytes_by_technique:
        out.append('<section><h2>By technique</h2><table class="nr-tech">')
        out.append("<thead><tr><th>technique</th><th>size</th></tr></thead><tbody>")
        for technique, size in h.bytes_by_technique.items():
            out.append(f"<tr><td>{_e(technique)}</td><td>{_e(terabytes(size))}</td></tr>")
        out.append("</tbody></table></section>")
    out.append('<section><h2>Recent datasets</h2><ul class="nr-recent">')
    if not h.recent:
        out.append("<li>No dataset yet.</li>")
    for r in h.recent:
        ref = f"{r.accession}@v{r.version}"
        out.append('<li class="nr-ds">')
        if r.thumbnail:
            out.append(
                f'<img src="{_e(p + quote(r.thumbnail, safe="/@"))}?size=128" alt="" '
                'width="96" height="96">'
            )
        out.append(  # the version's public landing page (service/_pages.py)
            f'<div><a class="nr-ref" href="{_e(p + quote(ref, safe="@"))}">{_e(ref)}</a> '
        )
        if r.access == "embargoed":
            until = f" until {r.embargo_until}" if r.embargo_until else ""
            out.append(f'<span class="nr-badge nr-embargo">embargoed{_e(until)}</span> ')
        out.append(f'<span class="nr-date">{_e(r.created)}</span>')
        out.append(f'<div class="nr-title">{_e(r.title)}</div>')
        if hub:
            out.append(
                f'<a class="nr-open" href="{_e(lab_link(hub, r.accession))}">Open in Lab</a>'
            )
        else:
            out.append(f'<code>nanorepo.open("{_e(ref)}")</code>')
        out.append("</div></li>")
    out.append("</ul></section>")
    if pending is not None:
        out.append('<section class="nr-admin"><h2>Sign-ups waiting for approval</h2>')
        if not pending:
            out.append("<p>None.</p>")
        else:
            out.append('<table class="nr-pending"><thead><tr><th>user</th><th>name</th>')
            out.append("<th>e-mail</th><th>affiliation</th><th>ORCID</th></tr></thead><tbody>")
            for u in pending:
                orcid = (
                    f'<a href="https://orcid.org/{_e(u.orcid)}">{_e(u.orcid)}</a>'
                    if u.orcid
                    else ""
                )
                out.append(
                    f"<tr><td>{_e(u.username)}</td><td>{_e(u.name)}</td><td>{_e(u.email)}</td>"
                    f"<td>{_e(u.affiliation)}</td><td>{orcid}</td></tr>"
                )
            out.append("</tbody></table>")
        if hub:
            out.append(f'<p><a href="{_e(hub)}hub/authorize">Approve or refuse accounts</a></p>')
        out.append("</section>")
    out.append(
        '<footer><a href="openapi.json">API (OpenAPI)</a> · '
        f"nanorepo {_e(__version__)}</footer></main></body></html>"
    )
    return "".join(out)


def hub_pending_signups(settings: Settings) -> list[PendingSignup] | None:
    """The sign-ups waiting for approval, from the hub's ``api/nanorepo/signups`` (added
    by :class:`~nanorepo.hub.NanorepoAuthenticator`, readable with the service's token);
    ``None`` when the hub has no such list (another authenticator) or does not answer."""
    if not (settings.hub_api_url and settings.hub_api_token):
        return None
    try:
        r = httpx.get(
            f"{settings.hub_api_url.rstrip('/')}/nanorepo/signups",
            headers={"Authorization": f"token {settings.hub_api_token}"},
            timeout=5,
        )
    except httpx.HTTPError:
        log.warning("the hub did not answer for pending sign-ups", exc_info=True)
        return None
    if r.status_code != 200:
        return None
    fields = {f for f in PendingSignup.__dataclass_fields__}
    return [
        PendingSignup(**{k: str(v) for k, v in item.items() if k in fields})
        for item in r.json().get("items", [])
        if isinstance(item, dict) and item.get("username")
    ]


def install_landing(
    app: FastAPI,
    prefix: str,
    *,
    pending_signups: Callable[[], list[PendingSignup] | None] | None = None,
) -> None:
    """Add ``GET {prefix}/`` (the page) and its stylesheet to ``app``.

    ``pending_signups`` lists the accounts waiting for approval, shown to admins
    (default: the hub's sign-ups, see :func:`hub_pending_signups`).
    """
    css = resources.files("nanorepo.service").joinpath("static/landing.css").read_bytes()

    async def stylesheet() -> Response:
        return Response(
            css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
        )

    def landing(request: Request) -> Response:
        st = state_of(request)
        with st.repo.catalog.session() as s:
            try:
                principal = resolve_principal(
                    request, s, hub=st.hub, allow_anonymous=st.settings.allow_anonymous
                )
            except Unauthenticated:
                if st.hub is None:
                    raise
                login = f"{prefix}/login?{urlencode({'next': prefix + '/'})}"
                return RedirectResponse(login, status_code=302)
            h = holdings(s, principal)
        pending = None
        if principal.role >= Role.admin:
            pending = pending_signups() if pending_signups else hub_pending_signups(st.settings)
        page = render_landing(
            h, prefix=prefix, hub=hub_base(st.settings.service_prefix), pending=pending
        )
        return HTMLResponse(
            page,
            headers={
                "Content-Security-Policy": PAGE_CSP,
                "Cache-Control": "private, no-cache",
                "Vary": "Cookie, Authorization",
            },
        )

    app.add_api_route(f"{prefix}/", landing, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{prefix}/{_CSS}", stylesheet, methods=["GET"], include_in_schema=False)
