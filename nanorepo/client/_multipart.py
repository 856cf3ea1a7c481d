"""A streaming ``multipart/form-data`` body for deposit uploads.

httpx can stream file parts, but only from file objects opened up front: an OME-Zarr
directory of thousands of objects would hold thousands of open files. This encoder opens
each file only while its part is sent, and knows the body's length beforehand, so the
request carries ``Content-Length`` and the service can refuse an oversized upload before a
byte of it is sent.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

from nanorepo.errors import InvalidInput

__all__ = ["MultipartBody"]

_CHUNK = 1 << 20
# What browsers and httpx do with quotes and control characters in a part's name (HTML5).
_ESCAPE = {'"': "%22", "\\": "\\\\", **{chr(c): f"%{c:02X}" for c in range(32) if c != 27}}
_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in _ESCAPE))


def _quote(value: str) -> str:
    return _ESCAPE_RE.sub(lambda m: _ESCAPE[m.group(0)], value)


class MultipartBody:
    """The parts of one upload: text ``fields`` and ``files`` as (field, file name, path).

    Iterating yields the encoded body; :attr:`length` is its exact size in bytes.
    """

    def __init__(
        self, fields: Sequence[tuple[str, str]], files: Sequence[tuple[str, str, Path]]
    ) -> None:
        self.boundary = "nanorepo-" + secrets.token_hex(16)
        self._heads: list[tuple[bytes, Path | None, int, bytes]] = []
        for name, value in fields:
            head = f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"'
            self._heads.append((f"{head}\r\n\r\n".encode(), None, 0, value.encode() + b"\r\n"))
        for name, filename, path in files:
            head = (
                f"--{self.boundary}\r\nContent-Disposition: form-data; "
                f'name="{_quote(name)}"; filename="{_quote(filename)}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            )
            self._heads.append((head.encode(), path, path.stat().st_size, b"\r\n"))
        self._end = f"--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def length(self) -> int:
        return sum(len(h) + n + len(t) for h, _p, n, t in self._heads) + len(self._end)

    @property
    def file_bytes(self) -> int:
        """Bytes of file content (what the service's upload limit counts)."""
        return sum(n + len(t) for _h, p, n, t in self._heads if p is not None)

    def __iter__(self) -> Iterator[bytes]:
        for head, path, size, tail in self._heads:
            yield head
            if path is not None:
                left = size
                with path.open("rb") as f:
                    while left > 0:
                        chunk = f.read(min(_CHUNK, left))
                        if not chunk:
                            raise InvalidInput(
                                f"{path} shrank while it was being uploaded",
                                hint="upload again once nothing writes to the file",
                            )
                        left -= len(chunk)
                        yield chunk
            yield tail
        yield self._end
