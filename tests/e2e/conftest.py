"""One real ``nanorepo up`` for the end-to-end tests of a module, and a hub user on it.

:func:`hub` starts ``nanorepo up`` in a fresh home with the demo reference datasets, as an
operator does; :func:`hub_user` signs a new person up through the hub's form, has the admin
approve them, signs them in and starts their JupyterLab server from the spawn form, as a
new user meets the research environment. Both are module-scoped: starting the hub and
depositing the demo data is most of the cost, and what the tests do as the user does not
change what the others see.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nanorepo.hub._local import free_ports
from tests.hub.test_up import PASSWORD, Up, _login, _xsrf, nanorepo_up

#: nanorepo up deposits the demo datasets on first start: a few minutes on two cores.
UP_TIMEOUT_S = 900


@dataclass
class HubUp:
    """A running ``nanorepo up``: its URL, home, and the admin signed in (a browser's
    cookies in ``admin``)."""

    up: Up
    url: str
    home: Path
    admin: httpx.Client


@dataclass
class HubUser:
    """A person who signed up, was approved, signed in and has a running server."""

    name: str
    client: httpx.Client  # the browser: hub and server cookies
    server: str  # the server's URL, ending in /
    home: Path  # the home directory on disk


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubUp]:
    home = tmp_path_factory.mktemp("e2e") / "home"
    (port,) = free_ports(1)
    with nanorepo_up(home, port, demo=True, timeout_s=UP_TIMEOUT_S) as up:
        password = up.read_until(r"admin account: admin\s+first password: (\S+)").group(1)
        with httpx.Client(timeout=120) as admin:
            assert _login(admin, up.url, "admin", password).status_code == 302
            yield HubUp(up, up.url, home, admin)


@pytest.fixture(scope="module")
def hub_user(hub: HubUp) -> Iterator[HubUser]:
    name, url = "grace", hub.url
    with httpx.Client(timeout=120) as browser:
        page = browser.get(f"{url}/hub/signup")
        signup = browser.post(
            f"{url}/hub/signup",
            data={"username": name, "signup_password": PASSWORD,
                  "signup_password_confirmation": PASSWORD, "_xsrf": _xsrf(page),
                  "name": "Grace Hopper", "email": "grace@lab.example.org",
                  "affiliation": "Institute of Nanoscopy"},
        )  # fmt: skip
        assert signup.status_code == 200, signup.text[:500]
        assert _login(browser, url, name, PASSWORD).status_code != 302  # not approved yet
        hub.admin.get(f"{url}/hub/authorize/{name}")
        assert _login(browser, url, name, PASSWORD).status_code == 302
        form = browser.get(f"{url}/hub/spawn/{name}")
        action = re.search(r'id="spawn_form"\s+action="([^"]+)"', form.text)
        assert action is not None, form.text[:500]
        browser.post(f"{url}{action.group(1).replace('&amp;', '&')}", data={"profile": "small"})
        lab = browser.get(f"{url}/user/{name}/lab", follow_redirects=True)
        deadline = time.monotonic() + 180
        while not (lab.status_code == 200 and "JupyterLab" in lab.text):
            assert time.monotonic() < deadline, f"{name}'s server did not start: {lab.text[:500]}"
            time.sleep(1)
            lab = browser.get(f"{url}/user/{name}/lab", follow_redirects=True)
        yield HubUser(name, browser, f"{url}/user/{name}/", hub.home / "users" / name)
