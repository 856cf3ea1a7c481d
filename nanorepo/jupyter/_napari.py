"""``POST {base_url}nanorepo/api/_napari``: "View in napari" from the Lab extension.

napari is a desktop program: it opens a window on the machine it runs on. A user's Jupyter
server can show one only when it has a desktop (``DISPLAY`` or ``WAYLAND_DISPLAY`` in its
environment, e.g. a hub desktop or a laptop running ``jupyter lab``). With one, the
handler starts ``nanorepo view ACCESSION@vN [--image NAME]`` as the user (the server's
own user, with the server's environment, so the viewer reads the same storage view and
token); without one it answers the command to run on a machine that has one, and the
extension shows it. Either way nothing here reads image data.

The command runs in its own session (closing the browser tab does not kill the viewer);
its output goes to ``nanorepo-view.log`` in the server's runtime directory. If it exits
within the first second (say napari is not installed), the answer says so with the end
of that log instead of claiming success.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler

from nanorepo.errors import InvalidInput
from nanorepo.storage import check_accession, check_name

__all__ = ["DEFAULT_COMMAND", "NAPARI_KEY", "NapariHandler", "NapariLauncher"]

#: Key of the :class:`NapariLauncher` in the tornado application's settings.
NAPARI_KEY = "nanorepo_napari"

#: ``nanorepo view`` of the interpreter running the server (no reliance on ``PATH``).
DEFAULT_COMMAND = (sys.executable, "-m", "nanorepo", "view")


@dataclass(frozen=True)
class NapariLauncher:
    """How "View in napari" runs on this server.

    Attributes
    ----------
    command:
        The viewer command before its arguments (default ``nanorepo view``).
    display:
        The desktop the server can open windows on (``DISPLAY`` / ``WAYLAND_DISPLAY`` when
        the server started), or ``None``.
    log_dir:
        Where the viewer's output goes (``nanorepo-view.log``).
    startup_s:
        How long to watch the new process for an immediate failure.
    """

    command: tuple[str, ...]
    display: str | None
    log_dir: Path
    startup_s: float = 1.0

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        command: Sequence[str] = DEFAULT_COMMAND,
        log_dir: Path | None = None,
    ) -> NapariLauncher:
        """The launcher for a server started with ``env`` (default: this process's)."""
        env = os.environ if env is None else env
        display = env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or None
        if log_dir is None:
            from jupyter_core.paths import jupyter_runtime_dir

            log_dir = Path(jupyter_runtime_dir())
        return cls(command=tuple(command), display=display, log_dir=log_dir)

    def argv(self, accession: str, version: object, image: str | None) -> list[str]:
        """The full command for one dataset version (and image), arguments checked."""
        check_accession(accession)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInput(f"version {version!r} is not a version number (1, 2, ...)")
        out = [*self.command, f"{accession}@v{version}"]
        if image is not None:
            out += ["--image", check_name(image, what="image name")]
        return out

    def launch(self, argv: list[str]) -> tuple[bool, str]:
        """Start ``argv`` on the desktop; (started, what happened)."""
        if not self.display:
            return False, (
                "this Jupyter server has no desktop (DISPLAY is not set): run the command "
                "on a machine with a screen, or open the hub's desktop"
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / "nanorepo-view.log"
        with log.open("ab") as out:
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            except OSError as exc:
                return False, f"could not start {argv[0]!r}: {exc}"
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        code = proc.poll()
        if code is not None and code != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            return False, f"the viewer exited with status {code}: " + " | ".join(tail)
        return True, f"napari is opening on display {self.display}"


class NapariHandler(APIHandler):
    """``POST`` ``{"accession", "version", "image", "launch"}`` → ``{"command", "argv",
    "launched", "reason"}``; 400 with a problem for bad input."""

    @property
    def launcher(self) -> NapariLauncher:
        launcher: NapariLauncher = self.settings[NAPARI_KEY]
        return launcher

    @tornado.web.authenticated
    def post(self) -> None:
        try:
            body: Any = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._bad("the body must be a JSON object {accession, version, image, launch}")
            return
        image = body.get("image")
        try:
            if image is not None and not isinstance(image, str):
                raise InvalidInput("image must be an image name or null")
            argv = self.launcher.argv(str(body.get("accession", "")), body.get("version"), image)
        except InvalidInput as exc:
            self._bad(exc.message, exc.hint)
            return
        launched, reason = False, "shown, not started (launch was not asked for)"
        if body.get("launch") is True:
            launched, reason = self.launcher.launch(argv)
        shown = ["nanorepo", "view", *argv[len(self.launcher.command) :]]
        self.finish(
            json.dumps(
                {"command": shlex.join(shown), "argv": argv, "launched": launched,
                 "reason": reason}
            )
        )  # fmt: skip

    def _bad(self, detail: str, hint: str | None = None) -> None:
        self.set_status(400)
        problem = {"type": "about:blank", "title": "Bad Request", "status": 400,
                   "detail": detail, "hint": hint}  # fmt: skip
        self.finish(json.dumps(problem), set_content_type="application/problem+json")
