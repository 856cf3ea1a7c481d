"""``nanorepo.Client``: the REST service from Python, one method per endpoint.

Lists are iterated lazily, page after page, following the service's ``next`` cursors
(:class:`~nanorepo.client.Pages`). Every error the service answers becomes the matching
:mod:`nanorepo.errors` exception with the service's message and hint (see
:mod:`nanorepo.client._errors`); edits send ``If-Match`` so nobody's change is lost.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from nanorepo.client._annotations import AnnotationMethods
from nanorepo.client._base import Json, Pages, Version
from nanorepo.client._base import seg as _seg
from nanorepo.client._base import ver as _ver
from nanorepo.client._errors import error_from_response, transport_error
from nanorepo.client._multipart import MultipartBody
from nanorepo.client._runs import RunMethods
from nanorepo.errors import IntegrityError, InvalidInput

__all__ = ["Client"]


class Client(AnnotationMethods, RunMethods):
    """A client of one nanorepo service.

    Parameters
    ----------
    url:
        Service root, e.g. ``http://127.0.0.1:8000`` or ``https://hub.example.org/services/
        nanorepo``. Default: ``NANOREPO_URL``.
    token:
        API token sent as ``Authorization: token …``. Default: ``NANOREPO_TOKEN``, else
        ``JUPYTERHUB_API_TOKEN`` (a notebook's own hub token). None: anonymous, public data.
    settings:
        Where the defaults come from (default: the environment).
    timeout:
        Seconds to wait for the service on ordinary calls (deposits wait as long as the
        conversion takes).

    Examples
    --------
    >>> c = nanorepo.Client()                                      # doctest: +SKIP
    >>> [d["accession"] for d in c.datasets(q="technique:STED")]   # doctest: +SKIP
    """

    #: Largest upload the service accepts (``POST /deposits``); larger datasets are copied
    #: to the caller's staging area and deposited with :meth:`deposit_staged`.
    upload_limit = 2 << 30

    # -- service and datasets ------------------------------------------------------------

    def health(self) -> Json:
        """Whether the service and its catalog answer; ``user`` is who the token stands for."""
        out: Json = self._json("GET", "/health")
        return out

    def datasets(self, q: str = "", *, page_size: int = 100) -> Pages:
        """Summaries of the datasets the caller may see; with ``q``, a search (best first):
        words and ``field:value`` filters, e.g. ``nuclear pore technique:STED``."""
        return self._pages("/datasets", [("q", q or None)], limit=page_size)

    def dataset(self, accession: str) -> Json:
        """A dataset: summary, versions, mutable metadata, grants (if yours), ``can``."""
        out: Json = self._json("GET", f"/datasets/{_seg(accession)}", accession=accession)
        return out

    def versions(self, accession: str) -> list[Json]:
        out: list[Json] = self._json(
            "GET", f"/datasets/{_seg(accession)}/versions", accession=accession
        )
        return out

    def version(self, accession: str, version: Version = None) -> Json:
        """One version (``None`` or ``"latest"``: the latest): digests, size, note."""
        out: Json = self._json(
            "GET", f"/datasets/{_seg(accession)}/versions/{_ver(version)}", accession=accession
        )
        return out

    def sealed_metadata(self, accession: str, version: Version = None) -> Json:
        """The immutable (REMBI) metadata of a version as sealed, with its ``sha256``."""
        out: Json = self._json(
            "GET",
            f"/datasets/{_seg(accession)}/versions/{_ver(version)}/metadata",
            accession=accession,
        )
        return out

    def mutable(self, accession: str) -> tuple[Json, str]:
        """Administrative metadata ``(fields, etag)``; pass the ETag to :meth:`set_metadata`."""
        r = self._request("GET", f"/datasets/{_seg(accession)}/mutable", accession=accession)
        return dict(r.json()["fields"]), r.headers.get("etag", "")

    def set_metadata(
        self,
        accession: str,
        changes: Mapping[str, Any],
        reason: str,
        *,
        etag: str | None = None,
    ) -> Json:
        """Change administrative metadata (kept as a revision with ``reason``).

        ``etag`` is what :meth:`mutable` returned when you read the values you changed; a
        newer edit by someone else then raises :class:`~nanorepo.errors.Conflict` whose
        ``current`` holds the metadata as it is now. ``None`` reads the current ETag first.
        """
        path = f"/datasets/{_seg(accession)}/mutable"
        if etag is None:
            _fields, etag = self.mutable(accession)
        out: Json = self._json(
            "PATCH", path, accession=accession, headers={"If-Match": etag},
            json={"changes": dict(changes), "reason": reason},
        )  # fmt: skip
        return out

    def history(self, accession: str, *, page_size: int = 500) -> list[Json]:
        """Every change of mutable metadata and access, oldest first."""
        return list(
            self._pages(
                f"/datasets/{_seg(accession)}/history", [], accession=accession, limit=page_size
            )
        )

    # -- images and files ------------------------------------------------------------------

    def images(
        self,
        accession: str,
        version: Version = None,
        *,
        filter: Mapping[str, str] | None = None,
        q: str | None = None,
        sort: str | None = None,
        order: str | None = None,
        page_size: int = 200,
    ) -> Pages:
        """The images of a version, filtered by key/value metadata (``{"condition": "ko"}``)."""
        params: list[tuple[str, Any]] = [
            ("filter", f"{k}:{v}") for k, v in (filter or {}).items()
        ] + [("q", q), ("sort", sort), ("order", order)]
        return self._pages(
            f"/datasets/{_seg(accession)}/versions/{_ver(version)}/images",
            params,
            accession=accession,
            limit=page_size,
        )

    def image(self, accession: str, version: Version, name: str) -> Json:
        out: Json = self._json(
            "GET",
            f"/datasets/{_seg(accession)}/versions/{_ver(version)}/images/{_seg(name)}",
            accession=accession,
        )
        return out

    def thumbnail(
        self, accession: str, version: Version, name: str, *, size: int | None = None
    ) -> bytes:
        """The image's PNG thumbnail (``size``: longest side in pixels)."""
        return self._request(
            "GET",
            f"/datasets/{_seg(accession)}/versions/{_ver(version)}/images/{_seg(name)}"
            "/thumbnail.png",
            accession=accession,
            params={"size": size} if size else None,
        ).content

    def zarr_url(self, accession: str, version: Version, image: str) -> str:
        """URL of an image's OME-Zarr on the service (send :attr:`auth_headers` with it)."""
        if not isinstance(version, int):
            v = str(version or "latest")
            if v[:1] in {"v", "V"} and v[1:].isdigit():
                version = int(v[1:])
            elif v.isdigit():
                version = int(v)
            else:
                version = int(self.version(accession, v)["version"])
        return f"{self.url}/zarr/{_seg(accession)}/v{version}/{_seg(image)}"

    def files(self, accession: str, version: Version = None, *, page_size: int = 200) -> Pages:
        """The stored files of a version (localisation tables, originals, supporting)."""
        return self._pages(
            f"/datasets/{_seg(accession)}/versions/{_ver(version)}/files",
            [],
            accession=accession,
            limit=page_size,
        )

    def download(
        self,
        accession: str,
        version: Version,
        name: str,
        dest: str | os.PathLike[str] | None = None,
        *,
        byte_range: tuple[int, int | None] | None = None,
        verify: bool = True,
    ) -> Path | bytes:
        """A stored file: written to ``dest`` (a file, or a directory to put it in), else
        returned as bytes.

        ``byte_range=(start, end)`` asks for bytes ``start..end`` inclusive (``end`` None:
        to the end of the file) and returns them. A whole file written to ``dest`` is
        checked against its SHA-256 (``verify``) and appears only once complete.
        """
        path = f"/datasets/{_seg(accession)}/versions/{_ver(version)}/files/{_seg(name)}"
        if byte_range is not None:
            start, end = byte_range
            if start < 0 or (end is not None and end < start):
                raise InvalidInput(f"byte_range {byte_range} is not a range of bytes")
            header = f"bytes={start}-{'' if end is None else end}"
            r = self._request("GET", path, accession=accession, headers={"Range": header})
            data = r.content
            if r.status_code == 200:  # the whole file: cut the range out ourselves
                data = data[start : None if end is None else end + 1]
            return data
        if dest is None:
            return self._request("GET", path, accession=accession).content
        target = Path(dest)
        if target.is_dir():
            target = target / Path(name).name
        expected = None
        if verify:
            info = next((f for f in self.files(accession, version) if f["name"] == name), None)
            expected = info["sha256"] if info else None
        part = target.with_name(target.name + ".part")
        digest = hashlib.sha256()
        try:
            with self._http.stream("GET", path.lstrip("/"), timeout=self._long()) as r:
                if r.status_code >= 300:
                    r.read()
                    raise error_from_response(r, accession=accession, base_url=self.url)
                with part.open("wb") as f:
                    for chunk in r.iter_bytes(1 << 20):
                        digest.update(chunk)
                        f.write(chunk)
        except httpx.TransportError as exc:
            part.unlink(missing_ok=True)
            raise transport_error(exc, self.url) from exc
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        if expected is not None and digest.hexdigest() != expected:
            part.unlink(missing_ok=True)
            raise IntegrityError(
                f"{accession}@{_ver(version)}/{name}: the download does not match its SHA-256",
                hint="download it again; if it persists, tell the repository's curators",
            )
        part.replace(target)
        return target

    # -- access ----------------------------------------------------------------------------

    def grants(self, accession: str) -> list[Json]:
        """Who has been given access (owner, curators, admins only)."""
        out: list[Json] = self._json(
            "GET", f"/datasets/{_seg(accession)}/grants", accession=accession
        )
        return out

    @staticmethod
    def _grantee(user: str | None, group: str | None) -> tuple[str, str]:
        if (user is None) == (group is None):
            raise InvalidInput("name either a user or a group", hint="user='bob' or group='lab'")
        return ("user", user) if user is not None else ("group", str(group))

    def grant(self, accession: str, *, user: str | None = None, group: str | None = None) -> Json:
        """Give a user or a group access to an embargoed dataset."""
        kind, principal = self._grantee(user, group)
        out: Json = self._json(
            "POST", f"/datasets/{_seg(accession)}/grants", accession=accession,
            json={"kind": kind, "principal": principal},
        )  # fmt: skip
        return out

    def revoke(self, accession: str, *, user: str | None = None, group: str | None = None) -> None:
        """Withdraw a grant."""
        kind, principal = self._grantee(user, group)
        self._request(
            "DELETE",
            f"/datasets/{_seg(accession)}/grants/{kind}/{_seg(principal)}",
            accession=accession,
        )

    def release(self, accession: str, reason: str, *, etag: str | None = None) -> Json:
        """End the embargo now: the dataset becomes public on every channel."""
        path = f"/datasets/{_seg(accession)}"
        etag = etag or self._etag(path, accession)
        out: Json = self._json(
            "POST", f"{path}/release", accession=accession, headers={"If-Match": etag},
            json={"reason": reason},
        )  # fmt: skip
        return out

    def embargo(
        self,
        accession: str,
        until: date | str | None,
        reason: str,
        *,
        etag: str | None = None,
    ) -> Json:
        """Put a dataset (back) under embargo until ``until`` (None: until released)."""
        path = f"/datasets/{_seg(accession)}"
        etag = etag or self._etag(path, accession)
        day = until.isoformat() if isinstance(until, date) else until
        out: Json = self._json(
            "POST", f"{path}/embargo", accession=accession, headers={"If-Match": etag},
            json={"until": day, "reason": reason},
        )  # fmt: skip
        return out

    # -- deposits --------------------------------------------------------------------------

    def deposit(
        self,
        paths: Iterable[str | os.PathLike[str]],
        title: str,
        metadata: str | os.PathLike[str] | None = None,
        embargo_until: date | str | None = None,
        *,
        supporting: Iterable[str | os.PathLike[str]] = (),
        pattern: str | None = None,
        derived_from: str | None = None,
    ) -> Json:
        """Upload local files (up to :attr:`upload_limit` in all) as a new dataset.

        Takes what ``nanorepo deposit`` takes: image files, OME-Zarr and plane directories
        (uploaded file by file), localisation tables, a metadata file (YAML or JSON), and
        ``derived_from``, the run whose outputs the files are (checked by digest; the
        dataset's provenance then points to it). Returns the new dataset's summary
        (``accession``, ``ref``, ...).
        """
        files: list[tuple[str, str, Path]] = []
        for raw in paths:
            p = _existing(raw)
            if p.is_dir():
                for f in sorted(x for x in p.rglob("*") if x.is_file()):
                    files.append(("files", f"{p.name}/{f.relative_to(p).as_posix()}", f))
            else:
                files.append(("files", p.name, p))
        files += [("supporting", _existing(s).name, _existing(s)) for s in supporting]
        if metadata is not None:
            m = _existing(metadata)
            files.append(("metadata", m.name, m))
        fields = [("title", title)]
        if embargo_until is not None:
            day = embargo_until if isinstance(embargo_until, str) else embargo_until.isoformat()
            fields.append(("embargo_until", day))
        if pattern:
            fields.append(("pattern", pattern))
        if derived_from:
            fields.append(("derived_from", derived_from))
        body = MultipartBody(fields, files)
        if body.file_bytes > self.upload_limit:
            raise InvalidInput(
                f"{body.file_bytes / 2**30:.1f} GiB is more than the "
                f"{self.upload_limit >> 30} GiB an upload may carry",
                hint="copy the files to your staging area on the server and use "
                "deposit_staged() (`nanorepo deposit` there)",
            )
        out: Json = self._json(
            "POST", "/deposits", content=iter(body), timeout=self._long(),
            headers={"Content-Type": body.content_type, "Content-Length": str(body.length)},
        )  # fmt: skip
        return out

    def deposit_staged(
        self,
        paths: Sequence[str],
        title: str,
        metadata: str | None = None,
        embargo_until: date | str | None = None,
        *,
        supporting: Sequence[str] = (),
        pattern: str | None = None,
        derived_from: str | None = None,
    ) -> Json:
        """Deposit files already in your staging area on the server (paths as the server
        sees them, or relative to your staging area): for datasets too large to upload.
        ``derived_from`` as for :meth:`deposit`."""
        day = embargo_until.isoformat() if isinstance(embargo_until, date) else embargo_until
        body: Json = {"paths": [str(p) for p in paths], "title": title,
                      "supporting": [str(s) for s in supporting]}  # fmt: skip
        for k, v in (("metadata", metadata), ("embargo_until", day), ("pattern", pattern),
                     ("derived_from", derived_from)):  # fmt: skip
            if v is not None:
                body[k] = str(v)
        out: Json = self._json("POST", "/deposits/staged", json=body, timeout=self._long())
        return out


def _existing(raw: str | os.PathLike[str]) -> Path:
    p = Path(raw).expanduser()
    if not p.exists():
        raise InvalidInput(f"{p}: no such file or directory", hint="check the path")
    return p
