""" "View in napari" through the user's Jupyter server (``POST nanorepo/api/_napari``).

Without a desktop the server answers the command to run elsewhere; with one it starts the
viewer command in its own session and says whether it came up. The viewer command here is
a small script that records its arguments (``nanorepo view`` itself, and napari, are
tested with the CLI); what is tested is the launcher: arguments checked and passed
exactly, a command that dies at once reported with its output, bad input refused with a
problem, nothing started without authentication.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx
import pytest

from nanorepo.jupyter._napari import DEFAULT_COMMAND, NapariLauncher
from tests.jupyter._servers import jupyter_server

RECORDER = """\
import json, sys
from pathlib import Path
Path(sys.argv[1]).write_text(json.dumps(sys.argv[2:]))
if sys.argv[2:3] == ["S-NANO7@v1"]:
    print("napari: no Qt bindings found", flush=True)
    sys.exit(3)
"""


def _server_env(display: str) -> dict[str, str]:
    return {"NANOREPO_URL": "http://127.0.0.1:9/", "DISPLAY": display, "WAYLAND_DISPLAY": ""}


def test_without_a_desktop_it_answers_the_command(tmp_path: Path) -> None:
    with (
        jupyter_server(tmp_path / "j", _server_env("")) as jp,
        httpx.Client(headers=jp.headers, timeout=30) as c,
    ):
        r = c.post(jp.api("_napari"), json={"accession": "S-NANO1", "version": 2,
                                            "image": "cell1", "launch": True})  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["command"] == "nanorepo view S-NANO1@v2 --image cell1"
        assert body["argv"] == [*DEFAULT_COMMAND, "S-NANO1@v2", "--image", "cell1"]
        assert body["launched"] is False and "DISPLAY" in body["reason"]
        whole = c.post(jp.api("_napari"), json={"accession": "S-NANO1", "version": 1})
        assert whole.json()["command"] == "nanorepo view S-NANO1@v1"

        for bad, detail in (
            ({"accession": "../../etc", "version": 1}, "not an accession"),
            ({"accession": "S-NANO1", "version": 0}, "not a version number"),
            ({"accession": "S-NANO1", "version": "1"}, "not a version number"),
            ({"accession": "S-NANO1", "version": 1, "image": "a/../b"}, "not a valid image name"),
            ({"accession": "S-NANO1", "version": 1, "image": 5}, "image must be"),
        ):
            r = c.post(jp.api("_napari"), json=bad)
            assert r.status_code == 400, (bad, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert detail in r.json()["detail"], (bad, r.json())
        r = c.post(jp.api("_napari"), content=b"[1, 2")
        assert r.status_code == 400 and "JSON object" in r.json()["detail"]
        # and nothing at all without the server's authentication
        assert (
            httpx.post(jp.api("_napari"), json={"accession": "S-NANO1", "version": 1}).status_code
            == 403
        )


def test_with_a_desktop_it_starts_the_viewer(tmp_path: Path) -> None:
    script, record = tmp_path / "viewer.py", tmp_path / "argv.json"
    script.write_text(RECORDER)
    config = tmp_path / "j" / "config"
    config.mkdir(parents=True)
    command = [sys.executable, str(script), str(record)]
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"NanorepoExtension": {"napari_command": command}})
    )
    with (
        jupyter_server(tmp_path / "j", _server_env(":42")) as jp,
        httpx.Client(headers=jp.headers, timeout=30) as c,
    ):
        r = c.post(jp.api("_napari"), json={"accession": "S-NANO3", "version": 1,
                                            "image": "npc_sted", "launch": True})  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["launched"] is True and ":42" in body["reason"], body
        assert body["command"] == "nanorepo view S-NANO3@v1 --image npc_sted"
        deadline = time.monotonic() + 10
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert json.loads(record.read_text()) == ["S-NANO3@v1", "--image", "npc_sted"]

        # asked only for the command: nothing is started
        record.unlink()
        r = c.post(jp.api("_napari"), json={"accession": "S-NANO3", "version": 1, "launch": False})
        assert r.json()["launched"] is False
        time.sleep(1.5)
        assert not record.exists()

        # a viewer that dies at once is reported with its output, not as started
        r = c.post(jp.api("_napari"), json={"accession": "S-NANO7", "version": 1, "launch": True})
        body = r.json()
        assert body["launched"] is False
        assert "status 3" in body["reason"] and "no Qt bindings" in body["reason"], body


@pytest.mark.parametrize(
    ("env", "display"),
    [({}, None), ({"DISPLAY": ":0"}, ":0"), ({"WAYLAND_DISPLAY": "wayland-0"}, "wayland-0"),
     ({"DISPLAY": ""}, None)],
)  # fmt: skip
def test_display_comes_from_the_environment(
    env: dict[str, str], display: str | None, tmp_path: Path
) -> None:
    launcher = NapariLauncher.from_environment(env, log_dir=tmp_path)
    assert launcher.display == display
    assert launcher.command == DEFAULT_COMMAND
