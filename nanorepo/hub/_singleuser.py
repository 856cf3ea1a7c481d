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

And one thing is added: **terminals keep this environment first on ``PATH``**. JupyterLab's
terminals start ``$SHELL -l``, a login shell, and the system profile (``/etc/profile``) sets
``PATH`` afresh, so ``nanorepo``, ``python`` and ``jupyter`` of the server's environment were
not found in a Lab terminal. The terminal's command is instead a login shell (the profile
runs as users expect) that puts this environment's ``bin`` first and becomes an interactive
shell (:func:`terminal_command`); a site that sets ``ServerApp.terminado_settings`` itself
keeps its own.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "terminal_command"]


def _no_yarn_config(logger: Any) -> dict[str, dict[str, Any]]:
    """What ``jupyterlab.commands._yarn_config`` answers when there is no Node.js."""
    return {"yarn config": {}, "npm config": {}}


def terminal_command(shell: str, bin_dir: Path) -> str:
    """The command of a Lab terminal: ``shell`` as a login shell that puts ``bin_dir`` first
    on ``PATH`` after the profile ran, then goes on as an interactive shell."""
    inner = f'PATH={shlex.quote(str(bin_dir))}:"$PATH"; export PATH; exec {shlex.quote(shell)} -i'
    return f"{shlex.quote(shell)} -l -c {shlex.quote(inner)}"


def main() -> None:
    """Run the JupyterHub single-user server without the two start-up costs, its terminals
    with this environment on ``PATH``."""
    if not any(a.startswith("--ServerApp.terminado_settings") for a in sys.argv):
        shell = os.environ.get("SHELL") or "/bin/bash"
        command = terminal_command(shell, Path(sys.executable).parent)
        sys.argv.append(f"--ServerApp.terminado_settings=shell_command={command}")
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    from jupyterlab import commands

    commands._yarn_config = _no_yarn_config  # before jupyterlab.labapp is imported

    from jupyterhub.singleuser import main as singleuser

    sys.exit(singleuser())


if __name__ == "__main__":
    main()
