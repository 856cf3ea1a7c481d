"""A new hub user, end to end, the way a person meets the research environment.

``nanorepo up`` with the demo data → sign up, approved by the admin, sign in, server
started from the spawn form (``conftest.py``) → every training notebook exactly as shipped
in ``~/nanorepo-notebooks``, cell by cell through the server's kernel API, in the user's own
kernel (no ``NANOREPO_HOME``: the service with the user's token, the read-only mount) → the
README's tour typed into a Lab terminal through the server's terminal websocket → nothing
ever created a catalog in the user's home → a dataset under embargo gives the user a
message, not a traceback.

One test, in steps that each assert: the steps share one hub and build on each other (the
embargo comes last so that the notebooks see every demo dataset).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from nanorepo.testing._hub import KernelSession, _cookies_for
from tests.e2e.conftest import HubUp, HubUser

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TRAINING = sorted((NOTEBOOKS / "training").glob("*.ipynb"))
#: Terminal output: colours, cursor moves, window titles, carriage returns.
_CONTROL = re.compile(r"\x1b\][^\x07]*\x07|\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[=>()][0-9A-Za-z]?|\r")


def _xsrf_header(client: httpx.Client, server: str) -> dict[str, str]:
    """The header jupyter-server wants on cookie-authenticated writes."""
    xsrf = [c for c in _cookies_for(client, server) if c.name == "_xsrf"]
    return {"X-XSRFToken": str(xsrf[0].value)} if xsrf else {}


def _ws(user: HubUser, path: str) -> Any:
    import websocket

    url = re.sub(r"^http", "ws", user.server.rstrip("/")) + path
    cookie = "; ".join(f"{c.name}={c.value}" for c in _cookies_for(user.client, user.server))
    return websocket.create_connection(url, cookie=cookie, timeout=600)


@contextmanager
def notebook_kernel(user: HubUser, path: str) -> Iterator[KernelSession]:
    """A kernel for the notebook at ``path`` (relative to the server's root), started as
    JupyterLab starts one when the notebook is opened: a session, so its working
    directory is the notebook's folder."""
    headers = _xsrf_header(user.client, user.server)
    r = user.client.post(
        f"{user.server}api/sessions", headers=headers,
        json={"path": path, "name": Path(path).name, "type": "notebook",
              "kernel": {"name": "python3"}},
    )  # fmt: skip
    assert r.status_code == 201, r.text[:500]
    session = r.json()
    ws = _ws(user, f"/api/kernels/{session['kernel']['id']}/channels?session_id={uuid.uuid4().hex}")
    try:
        yield KernelSession(ws, uuid.uuid4().hex)
    finally:
        ws.close()
        user.client.delete(f"{user.server}api/sessions/{session['id']}", headers=headers)


class Terminal:
    """A Lab terminal driven through the server's terminal websocket (terminado)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.n = 0
        ws.send(json.dumps(["set_size", 50, 220, 800, 1200]))

    def run(self, command: str, timeout_s: float = 600) -> str:
        """Type ``command`` and Enter; what the terminal showed until it finished."""
        self.n += 1
        end = f"__done_{self.n}__"
        # the shell computes the marker, so the echo of the typed line never matches
        typed = f"{command}; echo __done_$((0+{self.n}))__"
        self.ws.send(json.dumps(["stdin", typed + "\r"]))
        # what follows the echo: cut after the marker's expression, the echo's last token
        # (the whole typed line is not always echoed verbatim: readline may redraw it)
        expr = f"__done_$((0+{self.n}))__"
        seen = ""
        deadline = time.monotonic() + timeout_s
        while end not in seen.rsplit(expr, 1)[-1]:
            assert time.monotonic() < deadline, f"`{command}` did not finish:\n{seen[-3000:]}"
            kind, *payload = json.loads(self.ws.recv())
            if kind == "stdout":
                seen += _CONTROL.sub("", payload[0])
        return seen.rsplit(expr, 1)[-1].split(end, 1)[0]


@contextmanager
def terminal(user: HubUser) -> Iterator[Terminal]:
    headers = _xsrf_header(user.client, user.server)
    r = user.client.post(f"{user.server}api/terminals", headers=headers)
    assert r.status_code == 200, r.text[:500]
    name = r.json()["name"]
    ws = _ws(user, f"/terminals/websocket/{name}")
    try:
        yield Terminal(ws)
    finally:
        ws.close()
        user.client.delete(f"{user.server}api/terminals/{name}", headers=headers)


def _demo(hub: HubUp, q: str) -> list[str]:
    """Accessions the service finds for ``q`` (anonymous: the demo data is public)."""
    r = httpx.get(f"{hub.url}/services/nanorepo/datasets", params={"q": q}, timeout=60)
    r.raise_for_status()
    return [d["accession"] for d in r.json()["items"]]


def _catalogs(home: Path) -> list[Path]:
    return [p for p in home.rglob("*.sqlite") if ".ipython" not in p.parts]


def test_a_new_hub_user_does_everything_they_are_told_to(hub: HubUp, hub_user: HubUser) -> None:
    # 1. the training notebooks are in the user's home, exactly as shipped
    shipped = hub_user.home / "nanorepo-notebooks" / "training"
    assert sorted(p.name for p in shipped.glob("*.ipynb")) == [p.name for p in TRAINING]
    for nb in TRAINING:
        assert (shipped / nb.name).read_bytes() == nb.read_bytes(), nb.name

    # 2. each runs from top to bottom in the user's kernel and reaches its known answers
    for nb_path in TRAINING:
        nb = nbformat.read(shipped / nb_path.name, as_version=4)
        printed = []
        with notebook_kernel(hub_user, f"nanorepo-notebooks/training/{nb_path.name}") as k:
            for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
                try:
                    printed.append(k.run(cell.source, timeout_s=600))
                except RuntimeError as exc:
                    pytest.fail(f"{nb_path.name}, code cell {i}:\n{cell.source}\n{exc}")
        text = "".join(printed)
        assert "✔" in text or "All checks passed" in text, f"{nb_path.name}:\n{text[-3000:]}"

    # 3. the README's tour, typed into a Lab terminal as printed (S-NANO1: the STED pores)
    venv_bin = str(Path(sys.executable).parent)
    assert _demo(hub, "nuclear pore technique:STED")[0] == "S-NANO1"
    everything = _demo(hub, "")
    with terminal(hub_user) as term:
        where = term.run("command -v nanorepo python jupyter").split()
        assert where == [f"{venv_bin}/nanorepo", f"{venv_bin}/python", f"{venv_bin}/jupyter"]
        listed = term.run("nanorepo list")
        assert all(acc in listed for acc in everything), listed
        assert f"{len(everything)} of {len(everything)} dataset(s)" in listed
        found = term.run("nanorepo search nuclear pore technique:STED")
        assert "S-NANO1" in found and "dataset(s)" in found, found
        shown = term.run("nanorepo show S-NANO1")
        assert "cite as: S-NANO1@v1" in shown, shown
        opened = term.run(
            """python -c 'import nanorepo; print(nanorepo.open("S-NANO1").images[0].to_xarray())'"""
        )
        assert "<xarray.DataArray" in opened and "Traceback" not in opened, opened
        ran = term.run(
            "nanorepo run ~/nanorepo-notebooks/analyses/npc_rings.ipynb -p accession S-NANO1"
        )
        assert re.search(r"run [0-9a-f]{32}\s+succeeded\s+npc_rings\.ipynb", ran), ran
        assert "read    S-NANO1@v1" in ran, ran
        runs = term.run("nanorepo runs")
        assert "npc_rings.ipynb" in runs and "succeeded" in runs, runs
        # a template's own usage line, from its folder
        papermill = term.run(
            "cd ~/nanorepo-notebooks/analyses && papermill npc_rings.ipynb out.ipynb "
            "-p accession S-NANO1 -p output_dir results/ && cd"
        )
        assert "Traceback" not in papermill, papermill
        summary = hub_user.home / "nanorepo-notebooks" / "analyses" / "results" / "summary.json"
        assert json.loads(summary.read_text()), papermill

    # 4. nothing created a catalog in the user's home (only init, demo and up do)
    assert _catalogs(hub_user.home) == []

    # 5. a dataset under embargo: the user's kernel says so in words, without a traceback
    hidden = everything[-1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTERHUB_"))}
    embargo = subprocess.run(
        [sys.executable, "-m", "nanorepo", "--home", str(hub.home), "embargo", hidden,
         "--until", "2099-01-01", "--reason", "e2e: not yet published"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert embargo.returncode == 0, embargo.stderr
    first = f"nanorepo-notebooks/training/{TRAINING[0].name}"
    with notebook_kernel(hub_user, first) as k, pytest.raises(RuntimeError) as raised:
        k.run(f"import nanorepo\nnanorepo.open({hidden!r})")
    message = str(raised.value)
    # what the service says (invisible means "does not exist", D10), and how to go on
    assert f"NotFound: no dataset {hidden!r}\n  hint: " in message, message
    assert "Traceback" not in message and 'File "' not in message, message
