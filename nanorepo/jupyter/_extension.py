"""Loading the server extension: the forwarder's routes and the user's notebooks.

Enabled by ``jupyter-config/jupyter_server_config.d/nanorepo.json`` (installed into
``etc/jupyter`` with the wheel), or explicitly with
``--ServerApp.jpserver_extensions={"nanorepo.jupyter": True}``. Configured with traitlets
like any Jupyter component (``c.NanorepoExtension.notebooks_dir = ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traitlets import Bool, List, Unicode
from traitlets.config import LoggingConfigurable

from nanorepo.jupyter._forward import SETTINGS_KEY, Forwarder, setup_route_handlers
from nanorepo.jupyter._napari import DEFAULT_COMMAND, NAPARI_KEY, NapariLauncher
from nanorepo.jupyter._notebooks import sync_notebooks
from nanorepo.settings import Settings

__all__ = ["NanorepoExtension", "load_extension"]


class NanorepoExtension(LoggingConfigurable):
    """Configuration of nanorepo's part of each user's Jupyter server."""

    copy_notebooks = Bool(
        True,
        help="""Copy the shared training notebooks and analysis templates into the user's
        home when the server starts (first start: all; later: new and updated ones, never
        over a notebook the user edited).""",
    ).tag(config=True)

    notebooks_dir = Unicode(
        "nanorepo-notebooks",
        help="""Where the notebooks go, relative to the server's root directory (or
        absolute).""",
    ).tag(config=True)

    napari_command = List(
        Unicode(),
        list(DEFAULT_COMMAND),
        minlen=1,
        help="""The command "View in napari" runs on this server's desktop, before its
        arguments (ACCESSION@vN [--image NAME]). Default: `nanorepo view` of the
        server's own interpreter. Only used when the server has a desktop (DISPLAY or
        WAYLAND_DISPLAY set); otherwise the extension shows the command to run
        elsewhere.""",
    ).tag(config=True)


def load_extension(serverapp: Any) -> None:
    """Set up nanorepo in a running ``jupyter_server.serverapp.ServerApp``."""
    conf = NanorepoExtension(parent=serverapp)
    web_app = serverapp.web_app
    settings = Settings.from_env()
    web_app.settings[SETTINGS_KEY] = Forwarder.from_settings(settings)
    web_app.settings[NAPARI_KEY] = NapariLauncher.from_environment(
        command=conf.napari_command, log_dir=Path(serverapp.runtime_dir)
    )
    dest = Path(serverapp.root_dir).expanduser() / conf.notebooks_dir
    web_app.settings["nanorepo_notebooks_dir"] = str(dest) if conf.copy_notebooks else None
    setup_route_handlers(web_app)
    api = web_app.settings.get("base_url", "/") + "nanorepo/api/"
    if settings.url is None:
        serverapp.log.warning("nanorepo: NANOREPO_URL is not set; %s answers 502 until it is", api)
    else:
        serverapp.log.info("nanorepo: %s forwards to %s", api, settings.url)
    if conf.copy_notebooks:
        try:
            report = sync_notebooks(dest)
        except Exception as exc:  # a read-only or full home must not stop the server
            serverapp.log.error("nanorepo: could not copy the notebooks into %s: %s", dest, exc)
        else:
            if report.changed:
                serverapp.log.info(
                    "nanorepo: notebooks in %s: %d copied, %d updated, %d offered as (updated)",
                    dest, len(report.copied), len(report.updated), len(report.side_copies),
                )  # fmt: skip
