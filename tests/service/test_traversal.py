"""No request reaches a byte outside the object it names: path traversal on the Zarr, file
and thumbnail routes, sent as raw bytes (clients normalise URLs; an attacker does not), and
symlinks or FIFOs planted inside stored images, which must never be followed.

Marker strings are planted in secret files outside every image (next to the catalog, at the
storage root, inside the hidden dataset); no response may ever contain one, and every
answer must be a 4xx.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

MARKERS = {
    "home": "NANOREPO-MARKER-HOME-7f3a9c",
    "storage": "NANOREPO-MARKER-STORAGE-1b8e2d",
    "hidden": "NANOREPO-MARKER-HIDDEN-5c0f71",
}
#: Bytes that must never leave the service through these routes either.
FORBIDDEN = [
    *(m.encode() for m in MARKERS.values()),
    b"zanzibar",  # only in the hidden dataset's title (catalog) and metadata
    b"SQLite format 3",
    b"root:x:0:0",
]

#: Ways to write "../" (and near misses that some servers normalise into it).
UPS = [
    "../", "..%2f", "..%2F", "%2e%2e/", "%2e%2e%2f", "%2E%2E%2F", ".%2e/", "%2e./",
    "%252e%252e%252f", "..%252f", "%252e%252e/", "..\\", "..%5c", "..%5C", "%2e%2e%5c",
    "%252e%252e%255c", "%c0%ae%c0%ae/", "%c0%ae%c0%ae%c0%af", "..%c0%af", "..%c1%9c",
    "%e0%80%ae%e0%80%ae/", "%c0%2e%c0%2e/", "....//", "..;/", "..%00/", "..%u2215",
    "%u002e%u002e/", "%e2%80%a4%e2%80%a4/", "%ef%bc%8e%ef%bc%8e%ef%bc%8f", "..%09/",
    ".../", "..%2f%2f", "%2e%2e%2f%2f", "..%5c%2f",
]  # fmt: skip


def _targets(home: Path, hidden: str) -> list[tuple[str, int]]:
    """(target, number of "../" from an image directory to reach it).

    An image lives at home/storage/public/ACC/images/v1/NAME.ome.zarr: 6 levels below home.
    """
    return [
        ("secret.txt", 6),  # next to the catalog
        ("catalog.sqlite", 6),
        ("storage/secret.txt", 6),
        (f"embargoed/{hidden}/secret.txt", 5),
        (f"embargoed/{hidden}/images/v1/cell2.ome.zarr/zarr.json", 5),
        (f"embargoed/{hidden}/versions/v1/metadata.json", 5),
        ("etc/passwd", 14),  # the filesystem root, overshooting
    ]


def _raw_get(base: str, target: bytes, extra: bytes = b"") -> tuple[int | None, bytes]:
    """Send ``GET target`` exactly as given (no normalisation) and read the whole reply."""
    u = urlsplit(base)
    with socket.create_connection((u.hostname or "127.0.0.1", u.port or 80), timeout=30) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                  + extra + b"\r\n")  # fmt: skip
        chunks = []
        while chunk := s.recv(1 << 16):
            chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        return None, b""
    status_line = data.split(b"\r\n", 1)[0]
    return int(status_line.split(b" ", 2)[1]), data


def _plant_markers(service: Any) -> tuple[Path, str]:
    seed = service.seed
    home = service.repo.settings.home
    storage = service.repo.settings.storage
    hidden_dir = service.repo.layout.dataset_dir(seed.hidden, "embargoed")
    (home / "secret.txt").write_text(MARKERS["home"])
    (storage / "secret.txt").write_text(MARKERS["storage"])
    (hidden_dir / "secret.txt").write_text(MARKERS["hidden"])
    return home, seed.hidden


def _payloads(home: Path, hidden: str) -> list[str]:
    out = []
    for up, (target, depth) in itertools.product(UPS, _targets(home, hidden)):
        out.append(up * depth + target)
    absolute = [
        "/etc/passwd", "%2fetc%2fpasswd", "//etc/passwd", "%2f%2fetc%2fpasswd",
        "\\etc\\passwd", "%5cetc%5cpasswd", "file:///etc/passwd", "file:%2f%2f%2fetc%2fpasswd",
        f"{home}/secret.txt", quote(f"{home}/secret.txt", safe=""),
        f"{home}/catalog.sqlite", quote(f"{home}/catalog.sqlite", safe=""), "~/secret.txt",
        "%7e/secret.txt", "$HOME/secret.txt", "%00", "zarr.json%00", "zarr.json%00.png",
        "zarr.json;.png", "zarr.json%3b/../../../../../../secret.txt", ".", "..", "...",
        "%2e", "%2e%2e", "zarr.json/..", "zarr.json/../../../../../../../secret.txt",
        "0/c/0/0/0/../../../../../../../../../../secret.txt",
        "0/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "%e2%80%a8../secret.txt", "zarr.json%0d%0aX-Injected:%201",
    ]  # fmt: skip
    return out + absolute


def test_path_traversal_never_escapes(service: Any) -> None:
    seed = service.seed
    home, hidden = _plant_markers(service)
    prefix = urlsplit(service.url).path.rstrip("/")
    pub = seed.public
    # the sender works: a legitimate object comes back whole
    status, data = _raw_get(service.url, f"{prefix}/zarr/{pub}/v1/cell0/zarr.json".encode())
    assert status == 200 and b'"zarr_format"' in data
    assert all((home / "secret.txt").read_text() in MARKERS.values() for _ in [0])

    points = [
        f"{prefix}/zarr/{pub}/v1/cell0/",  # the object key
        f"{prefix}/zarr/{pub}/v1/cell0/0/",  # deeper inside the image
        f"{prefix}/zarr/{pub}/v1/",  # the image name
        f"{prefix}/zarr/{pub}/",  # the version
        f"{prefix}/zarr/",  # the accession
        f"{prefix}/datasets/{pub}/versions/v1/files/",  # a file name
        f"{prefix}/datasets/{pub}/versions/v1/files/originals/",
    ]
    payloads = _payloads(home, hidden)
    sent = 0
    statuses: dict[int | None, int] = {}
    for point, payload in itertools.product(points, payloads):
        for who in (b"", f"Authorization: token {seed.tokens['root']}\r\n".encode()):
            status, data = _raw_get(service.url, point.encode() + payload.encode(), who)
            sent += 1
            statuses[status] = statuses.get(status, 0) + 1
            leaked = [m for m in FORBIDDEN if m in data]
            assert not leaked, (point, payload, leaked, data[:500])
            assert status is not None and 400 <= status < 500, (point, payload, status, data[:300])
            head = data.split(b"\r\n\r\n", 1)[0].lower()
            assert b"\r\nx-injected" not in head  # no header injection either
    # thumbnails: the image name is the only path input
    for payload in payloads:
        target = f"{prefix}/datasets/{pub}/versions/v1/images/{payload}/thumbnail.png"
        status, data = _raw_get(service.url, target.encode())
        sent += 1
        assert not [m for m in FORBIDDEN if m in data], payload
        assert status is not None and 400 <= status < 500, (payload, status)
    assert sent >= 200 * 2
    print(f"\n{sent} traversal attempts, statuses: {statuses}")


def _image_dir(service: Any, accession: str, name: str) -> Path:
    d = service.repo.layout.dataset_dir(accession, "public")
    return d / "images" / "v1" / f"{name}.ome.zarr"


def test_planted_symlinks_and_fifos_are_never_followed(service: Any, tmp_path: Path) -> None:
    """Storage is written only by the service, but if a symlink ever appears inside a stored
    image (an operator's mistake, a restored backup, an attacker with storage access), the
    Zarr and file routes refuse it instead of serving what it points to."""
    seed = service.seed
    home, _hidden = _plant_markers(service)
    image = _image_dir(service, seed.public, "cell0")
    url = f"{service.url}/zarr/{seed.public}/v1/cell0"
    with httpx.Client(timeout=30) as c:
        assert c.get(f"{url}/0/zarr.json").status_code == 200
        assert c.get(f"{url}/0/c/0/0/0").status_code == 200

        # a listed object replaced by a symlink to a secret outside
        (image / "0" / "zarr.json").unlink()
        (image / "0" / "zarr.json").symlink_to(home / "secret.txt")
        r = c.get(f"{url}/0/zarr.json")
        assert r.status_code == 404 and MARKERS["home"] not in r.text
        assert c.head(f"{url}/0/zarr.json").status_code == 404

        # a listed directory replaced by a symlink to an identical copy outside the image
        outside = tmp_path / "outside-c"
        shutil.copytree(image / "0" / "c", outside)
        shutil.rmtree(image / "0" / "c")
        (image / "0" / "c").symlink_to(outside, target_is_directory=True)
        r = c.get(f"{url}/0/c/0/0/0")
        assert r.status_code == 404
        assert c.get(f"{url}/0/c/0/0/0", headers={"Range": "bytes=-16"}).status_code == 404

        # a FIFO where an object should be: refused at once, no worker left hanging
        (image / "zarr.json").rename(tmp_path / "zarr.json")
        os.mkfifo(image / "zarr.json")
        r = c.get(f"{url}/zarr.json", timeout=10)
        assert r.status_code == 404

        # the whole image directory swapped for a symlink leaving the dataset
        moved = tmp_path / "moved.ome.zarr"
        shutil.move(str(image), moved)
        image.symlink_to(moved, target_is_directory=True)
        r = c.get(f"{service.url}/zarr/{seed.public}/v1/cell0/zarr.json")
        assert 400 <= r.status_code < 500
        assert b'"zarr_format"' not in r.content

        # a deposited file replaced by a symlink
        tif = service.repo.layout.dataset_dir(seed.public, "public") / "originals" / "v1"
        (tif / "cell0.ome.tif").unlink()
        (tif / "cell0.ome.tif").symlink_to(home / "secret.txt")
        r = c.get(f"{service.url}/datasets/{seed.public}/versions/v1/files/originals/cell0.ome.tif")
        assert r.status_code == 404 and MARKERS["home"] not in r.text


@pytest.mark.parametrize("payload", ["..%2f..%2f..%2fsecret.txt", "%2e%2e/%2e%2e/secret.txt"])
def test_httpx_with_a_raw_path_is_refused_too(service: Any, payload: str) -> None:
    """The same through httpx with a pre-encoded path (what a scripted client sends)."""
    _plant_markers(service)
    base = httpx.URL(service.url)
    raw = f"{base.raw_path.decode().rstrip('/')}/zarr/{service.seed.public}/v1/cell0/{payload}"
    with httpx.Client(timeout=30) as c:
        r = c.get(base.copy_with(raw_path=raw.encode()))
    assert r.status_code == 404
    assert all(m not in r.text for m in MARKERS.values())
    assert "is not a key" in r.json()["detail"]
