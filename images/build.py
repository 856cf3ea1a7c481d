"""Build nanorepo's container images (service, hub, single-user) with podman, from the
committed locks, cached by what goes into them.

Each image installs one lock exactly (``requirements/server.txt`` or ``hub.txt``, every
file hash-checked) and nanorepo's wheel, built from the commit being built (``git
archive HEAD``, plus the JupyterLab extension as ``./dev install`` built it). The locked
files come from a wheelhouse filled once on the host (``pip download --require-hashes``,
so they are checked against the lock before they are used) and mounted read-only into
the build at ``/wheels``: a rebuild downloads nothing.

An image is tagged with the digest of its inputs (Dockerfile, install script, lock, the
wheel, the base image's id): when one with that tag exists, nothing is built.

The base image is a build argument (``BASE``; an official Python image by default). On
machines that cannot pull images (CI here), :func:`debian_base` bootstraps a Debian base
with mmdebstrap and imports it (``podman import``). podman runs with ``runc`` and
``cgroupfs`` (images/containers.conf) because crun cannot use the kernel's cgroup layout.

Usage: python images/build.py [--base IMAGE | --debian] [service hub singleuser]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "images"
CONTAINERS_CONF = HERE / "containers.conf"
#: image -> the lock it installs
LOCKS = {"service": "server.txt", "hub": "hub.txt", "singleuser": "hub.txt"}
DEBIAN_BASE = "localhost/nanorepo-debian:bookworm-py" + ".".join(map(str, sys.version_info[:3]))
#: what this machine's Python (the one the locks are tested with) links against
DEBIAN_PACKAGES = (
    "ca-certificates,libssl3,libsqlite3-0,libffi8,zlib1g,libbz2-1.0,liblzma5,libreadline8,"
    "libuuid1,libncursesw6,libgdbm6"
)


def cache_dir() -> Path:
    """Where the wheelhouse, the wheels and the Debian base tarball are kept."""
    base = os.environ.get("NANOREPO_TEST_CACHE") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return (root if os.environ.get("NANOREPO_TEST_CACHE") else root / "nanorepo") / "images"


def podman(*args: str, capture: bool = True) -> str:
    """Run podman with nanorepo's containers.conf; its output, or an error with its log."""
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    r = subprocess.run(["podman", *args], env=env, capture_output=capture, text=True)
    if r.returncode != 0:
        tail = ((r.stdout or "") + (r.stderr or ""))[-4000:]
        raise RuntimeError(f"podman {args[0]} failed ({r.returncode}):\n{tail}")
    return (r.stdout or "").strip()


def image_exists(tag: str) -> bool:
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    return subprocess.run(["podman", "image", "exists", tag], env=env).returncode == 0


def debian_base() -> str:
    """A Debian bookworm base (mmdebstrap, then ``podman import``) with this machine's
    Python, made once per machine.

    Debian's own python3 is 3.11.2, older than some locked packages allow (soupsieve needs
    3.11.5), so the base gets the interpreter the locks are tested with: this process's
    base installation, without its site-packages, at the same path (its libraries are
    found through that path), readable by the images' unprivileged users.
    """
    if not image_exists(DEBIAN_BASE):
        tar = cache_dir() / "debian-bookworm.tar"
        tar.parent.mkdir(parents=True, exist_ok=True)
        prefix = Path(sys.base_prefix)
        exe = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        hook = (
            f'tar -C / -c --exclude=site-packages --exclude=__pycache__ "{str(prefix)[1:]}"'
            f' | tar -C "$1" -x && mkdir -p "$1{prefix}/lib/{exe}/site-packages"'
            f' && chmod 755 "$1/root" && ln -sf "{prefix}/bin/{exe}" "$1/usr/local/bin/python3"'
        )
        subprocess.run(
            ["mmdebstrap", "--variant=minbase", f"--include={DEBIAN_PACKAGES}", "--quiet",
             f"--customize-hook={hook}", "bookworm", str(tar), "http://deb.debian.org/debian"],
            check=True,
        )  # fmt: skip
        podman("import", "--change", 'CMD ["/bin/bash"]', str(tar), DEBIAN_BASE)
        tar.unlink()
    return DEBIAN_BASE


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()


def wheelhouse(lock: Path) -> Path:
    """The lock's files, downloaded once and checked against its hashes; the build tools of
    its two sdists beside them (``build/``)."""
    house = cache_dir() / "wheelhouse"
    stamp = house / f".{lock.name}.{_digest(lock.read_bytes())[:16]}"
    if stamp.exists():
        return house
    house.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--require-hashes", "--no-deps", "-r", str(lock), "-d", str(house)],
                   check=True)  # fmt: skip
    if not (house / "build").is_dir():
        subprocess.run([*pip, "-d", str(house / "build"), "setuptools", "setuptools-scm",
                        "wheel"], check=True)  # fmt: skip
    stamp.touch()
    return house


def nanorepo_wheel() -> Path:
    """nanorepo's wheel, built from the committed tree (HEAD) with the JupyterLab extension
    as built in the checkout (``./dev install``), without build isolation (the locked build
    tools of .venv)."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    out = cache_dir() / "dist" / head
    wheels = sorted(out.glob("nanorepo-*.whl"))
    if wheels:
        return wheels[0]
    built = ROOT / "extension" / "labextension"
    if not (built / "package.json").is_file():
        raise RuntimeError("the JupyterLab extension is not built: run ./dev install first")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True,
                                 capture_output=True).stdout  # fmt: skip
        tar_path = Path(tmp) / "src.tar"
        tar_path.write_bytes(archive)
        with tarfile.open(tar_path) as tar:
            tar.extractall(src, filter="data")
        shutil.copytree(built, src / "extension" / "labextension")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--no-build-isolation", str(src), "-w", str(out)],
            check=True, env=env, cwd=tmp,
        )  # fmt: skip
    return sorted(out.glob("nanorepo-*.whl"))[0]


@dataclass(frozen=True)
class Built:
    """An image: its tag, whether this call built it, and the seconds it took."""

    name: str
    tag: str
    built: bool
    seconds: float

    def size_bytes(self) -> int:
        return int(podman("image", "inspect", "--format", "{{.Size}}", self.tag))


def build(name: str, base: str) -> Built:
    """Build image ``name`` on ``base`` unless an image of the same inputs exists."""
    lock = ROOT / "requirements" / LOCKS[name]
    dockerfile = HERE / name / "Dockerfile"
    wheel = nanorepo_wheel()
    base_id = podman("image", "inspect", "--format", "{{.Id}}", base)
    digest = _digest(
        dockerfile.read_bytes(), (HERE / "install.sh").read_bytes(), lock.read_bytes(),
        wheel.read_bytes(), base_id.encode(),
    )  # fmt: skip
    tag = f"localhost/nanorepo-{name}:{digest[:16]}"
    if image_exists(tag):
        return Built(name, tag, False, 0.0)
    house = wheelhouse(lock)
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as ctx:
        context = Path(ctx)
        shutil.copyfile(lock, context / "lock.txt")
        shutil.copyfile(HERE / "install.sh", context / "install.sh")
        (context / "dist").mkdir()
        shutil.copyfile(wheel, context / "dist" / wheel.name)
        podman(
            "build", "--quiet", "--network", "none", "--build-arg", f"BASE={base}",
            "--volume", f"{house}:/wheels:ro", "--file", str(dockerfile), "--tag", tag,
            str(context),
        )  # fmt: skip
    _drop_older(name, keep=tag)
    return Built(name, tag, True, time.monotonic() - start)


def _drop_older(name: str, keep: str) -> None:
    """Remove the earlier builds of image ``name`` (their layers shared with ``keep`` stay):
    each build of a new commit would otherwise keep ~1.5 GB on the machine."""
    tags = podman("images", "--format", "{{.Repository}}:{{.Tag}}", f"localhost/nanorepo-{name}")
    old = [t for t in tags.split() if t != keep and not t.endswith(":<none>")]
    if old:
        podman("rmi", *old)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", default=list(LOCKS), choices=[*LOCKS, []])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--base", default="docker.io/library/python:3.11-slim-bookworm")
    group.add_argument("--debian", action="store_true", help="bootstrap a Debian base")
    args = parser.parse_args(argv)
    base = debian_base() if args.debian else args.base
    for name in args.images or list(LOCKS):
        b = build(name, base)
        state = f"built in {b.seconds:.0f} s" if b.built else "up to date"
        print(f"{b.tag}  {b.size_bytes() / 1e9:.2f} GB  {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
