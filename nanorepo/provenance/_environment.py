"""The environment a run executes in, and what changed between two.

The package list comes from :mod:`importlib.metadata` (the distributions installed for the
interpreter, the same list ``pip freeze`` reports), read once per process and cached: a
batch of hundreds of runs pays for it once. The kernel is described from its kernel spec
(jupyter_client); when the kernel's interpreter is this one, as for the default
``python3`` kernel of a nanorepo environment, the package list is the kernel's.
"""

from __future__ import annotations

import platform
import socket
import sys
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from typing import Any

from nanorepo.provenance._record import Environment
from nanorepo.storage import canonical_json, sha256_hex

__all__ = ["capture_environment", "diff_environments"]


@cache
def _packages() -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(name.lower().replace("_", "-"), dist.version)
    return tuple(sorted(found.items()))


@cache
def _kernel(name: str) -> tuple[tuple[str, str], ...]:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return (("name", name),)
    exe = spec.argv[0] if spec.argv else ""
    if exe in {"python", "python3", "{python}"}:
        exe = sys.executable
    return (
        ("name", name),
        ("display_name", spec.display_name),
        ("language", spec.language),
        ("executable", exe),
    )


def capture_environment(kernel: str, *, image: str | None = None) -> Environment:
    """Describe this process's environment for a run on kernel ``kernel``.

    ``image`` is the container image when known (KubeSpawner sets ``JUPYTER_IMAGE_SPEC``;
    the runner passes it in). The digest covers everything but the host, so identical
    environments on different machines share it.
    """
    packages = dict(_packages())
    packages_sha256 = sha256_hex(canonical_json(packages))
    doc: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "kernel": dict(_kernel(kernel)),
        "packages_sha256": packages_sha256,
        "image": image,
    }
    digest = sha256_hex(canonical_json(doc))
    return Environment(
        sha256=digest,
        packages=packages,
        host=socket.gethostname(),
        **doc,
    )


def diff_environments(before: Environment | None, after: Environment | None) -> dict[str, Any]:
    """What differs between two environments: interpreter, kernel, image, host and packages
    (added, removed, changed ``{name: [old, new]}``). Empty when they are the same."""
    if before is None or after is None:
        return {} if before is after else {"missing": "before" if before is None else "after"}
    out: dict[str, Any] = {}
    for attr in ("python", "implementation", "platform", "image", "host"):
        a, b = getattr(before, attr), getattr(after, attr)
        if a != b:
            out[attr] = [a, b]
    if dict(before.kernel) != dict(after.kernel):
        out["kernel"] = [dict(before.kernel), dict(after.kernel)]
    pa: Mapping[str, str] = before.packages
    pb: Mapping[str, str] = after.packages
    added = {k: pb[k] for k in sorted(pb.keys() - pa.keys())}
    removed = {k: pa[k] for k in sorted(pa.keys() - pb.keys())}
    changed = {k: [pa[k], pb[k]] for k in sorted(pa.keys() & pb.keys()) if pa[k] != pb[k]}
    if added or removed or changed:
        out["packages"] = {"added": added, "removed": removed, "changed": changed}
    return out
