"""The user servers' command: ``python -m nanorepo.hub._singleuser`` is
``jupyterhub-singleuser`` (JupyterLab as a JupyterHub single-user server) started faster.

Two costs of every server start buy nothing on a user server and are skipped:

- ``jsonschema`` imports every optional format checker it finds, and ``rfc3987_syntax``
  (pulled in by ``jupyter-events``' ``jsonschema[format-nongpl]``) compiles ~35 Lark
  grammars at import: about a second, for the ``iri`` format that no Jupyter event schema
  uses (jupyter-server/jupyter_server#1559). It is marked absent, so ``jsonschema`` skips
  that one checker.
- importing ``jupyterlab.labapp`` asks yarn (a Node.js process) for its package registry,
  ~0.3 s, an answer needed only to build or install extensions, which users of a shared
  environment do not do. The registry is taken to be yarn's default instead.

Both are undone by nothing else and leave every other behaviour as it is; kernels are
other processes and are not affected.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["main"]


def _no_yarn_config(logger: Any) -> dict[str, dict[str, Any]]:
    """What ``jupyterlab.commands._yarn_config`` answers when there is no Node.js."""
    return {"yarn config": {}, "npm config": {}}


def main() -> None:
    """Run the JupyterHub single-user server without the two start-up costs."""
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    from jupyterlab import commands

    commands._yarn_config = _no_yarn_config  # before jupyterlab.labapp is imported

    from jupyterhub.singleuser import main as singleuser

    sys.exit(singleuser())


if __name__ == "__main__":
    main()
