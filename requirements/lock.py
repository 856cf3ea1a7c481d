"""Compile the locks of nanorepo's Python environment (``./dev lock`` runs this).

One lock per install flavour, each the full, exact, hash-checked set of packages that
``pip install nanorepo[flavour]`` needs on Python 3.11 on Linux x86-64 (the machines of CI and the images):

- ``base.txt``    the library, client and CLI (no extra)
- ``server.txt``  ``[server]``: the service and its catalog
- ``hub.txt``     ``[hub]`` plus the build requirements: the research environment, what
  ``./dev up`` installs (no test tools)
- ``napari.txt``  ``[napari]``: the napari plugin with Qt
- ``test.txt``    ``[test]`` plus the wheel's build requirements: what ``./dev`` installs

``test.txt`` is compiled first and is the constraint of the others, so every flavour pins
the same version of a package. uv keeps the versions already in a lock unless pyproject's
ranges exclude them (``--upgrade`` takes the newest allowed). The first line of each lock
records :func:`dependency_digest` of pyproject.toml; ``tests/test_packaging.py`` fails when
pyproject's dependencies changed and the locks were not refreshed.

Run with any Python >= 3.11 that has ``uv`` (``./dev lock`` installs it into ``.venv``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "requirements"
#: flavour -> extras; test first: it constrains the others.
FLAVOURS: dict[str, list[str]] = {
    "test": ["test"],
    "base": [],
    "server": ["server"],
    "hub": ["hub"],
    "napari": ["napari"],
}
DIGEST_PREFIX = "# nanorepo-lock: pyproject dependencies sha256="
PYTHON = "3.11.7"
PLATFORM = "x86_64-manylinux_2_36"


def dependency_digest(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """SHA-256 over what decides the locks: requires-python, the dependencies, the extras
    and the build requirements of ``pyproject``, in a canonical JSON form (so comments and
    formatting do not count)."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data["project"]
    decisive = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "build-system": data.get("build-system", {}).get("requires", []),
    }
    blob = json.dumps(decisive, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def recorded_digest(lock: Path) -> str | None:
    """The digest a lock file was compiled for (``None`` if it has no such line)."""
    with lock.open(encoding="utf-8") as f:
        first = f.readline().rstrip("\n")
    return first[len(DIGEST_PREFIX) :] if first.startswith(DIGEST_PREFIX) else None


#: the flavours ``./dev`` installs nanorepo (editable) from: ``up`` (hub) and ``test``
BUILDS_NANOREPO = ("test", "hub")


def _compile(uv: str, flavour: str, extras: list[str], extra_args: list[str]) -> None:
    out = HERE / f"{flavour}.txt"
    cmd = [
        uv, "pip", "compile", "--quiet", "--generate-hashes",
        "--python-version", PYTHON, "--python-platform", PLATFORM, "--no-header", "--annotation-style", "line",
        "--index-url", "https://pypi.org/simple", "--output-file", str(out),
        *extra_args, str(ROOT / "pyproject.toml"),
    ]  # fmt: skip
    for extra in extras:
        cmd += ["--extra", extra]
    # the wheel's build requirements too (and hatchling's for editable builds): ./dev
    # builds with --no-build-isolation; a fixed name keeps the lock's annotations stable
    build = HERE / "build-system.in"
    try:
        if flavour in BUILDS_NANOREPO:
            reqs = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
            build.write_text("\n".join([*reqs["requires"], "editables"]) + "\n")
            cmd.append(str(build.relative_to(ROOT)))
        if flavour != "test":
            cmd += ["--constraint", str((HERE / "test.txt").relative_to(ROOT))]
        env = {**os.environ, "UV_NO_CONFIG": "1"}
        subprocess.run(cmd, check=True, cwd=ROOT, env=env)
    finally:
        build.unlink(missing_ok=True)
    body = out.read_text(encoding="utf-8")
    if body.startswith(DIGEST_PREFIX):
        body = body.split("\n", 1)[1]
    lines = [line for line in body.splitlines() if not line.startswith("#")]
    header = (
        f"{DIGEST_PREFIX}{dependency_digest()}\n"
        f"# pip install nanorepo{'[' + ','.join(extras) + ']' if extras else ''}, exactly: "
        f"compiled by `./dev lock` (requirements/lock.py) with uv; do not edit.\n"
    )
    out.write_text(header + "\n".join(lines).lstrip("\n") + "\n", encoding="utf-8")
    print(f"locked {out.relative_to(ROOT)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uv", default="uv", help="the uv executable")
    parser.add_argument("--upgrade", action="store_true", help="newest versions pyproject allows")
    parser.add_argument("--check", action="store_true", help="only check the digests")
    args = parser.parse_args(argv)
    if args.check:
        want = dependency_digest()
        stale = [f for f in FLAVOURS if recorded_digest(HERE / f"{f}.txt") != want]
        if stale:
            print(f"stale locks (run ./dev lock): {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    extra = ["--upgrade"] if args.upgrade else []
    for flavour, extras in FLAVOURS.items():
        _compile(args.uv, flavour, extras, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
