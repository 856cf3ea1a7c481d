"""No handler of the extension is reachable without Jupyter authentication (the extension
template's ``check_auth`` idea), and nothing unauthenticated is ever forwarded.

The handlers and their verbs are read from a tornado application the extension registered
them on, so a handler added later is checked without editing this test.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import tornado.web
from tornado.routing import PathMatches, Router, RuleRouter

from nanorepo.jupyter import setup_route_handlers
from nanorepo.jupyter._forward import SETTINGS_KEY, Forwarder, ForwardHandler
from nanorepo.settings import Settings
from tests.jupyter._servers import JupyterServer, Recorder

VERBS = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS")


def _walk(router: Router) -> list[tuple[str, type]]:
    out: list[tuple[str, type]] = []
    if isinstance(router, RuleRouter):
        for rule in router.rules:
            if isinstance(rule.target, Router):
                out += _walk(rule.target)
            elif isinstance(rule.matcher, PathMatches):
                out.append((rule.matcher.regex.pattern, rule.target))
    return out


def registered() -> list[tuple[str, type, str]]:
    """(pattern, handler class, verb) for every verb every registered handler implements."""
    app = tornado.web.Application(base_url="/")
    app.settings[SETTINGS_KEY] = Forwarder.from_settings(Settings.from_env(env={}))
    setup_route_handlers(app)
    found = []
    for pattern, cls in _walk(app.default_router):
        for verb in VERBS:
            if getattr(cls, verb.lower()) is not getattr(tornado.web.RequestHandler, verb.lower()):
                found.append((pattern, cls, verb))
    return found


def concrete(pattern: str) -> str:
    """A request path matching a handler's pattern."""
    path = pattern.rstrip("$").replace("(.*)", "datasets/S-NANO1/mutable")
    path = re.sub(r"\\(.)", r"\1", path)
    assert re.fullmatch(pattern.rstrip("$"), path), (pattern, path)
    return path


def test_every_handler_and_verb_is_found() -> None:
    found = registered()
    forwarded = {verb for _, cls, verb in found if cls is ForwardHandler}
    assert forwarded == {"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"}
    assert any("_config" in pattern for pattern, _, _ in found)


@pytest.mark.parametrize(("pattern", "cls", "verb"), registered())
def test_each_verb_is_decorated(pattern: str, cls: type, verb: str) -> None:
    """Every verb but OPTIONS (Jupyter's own CORS preflight, which forwards nothing) carries
    ``tornado.web.authenticated``."""
    method: Any = getattr(cls, verb.lower())
    if verb == "OPTIONS":
        assert getattr(method, "__allow_unauthenticated", False), "OPTIONS must stay Jupyter's"
        return
    assert method.__code__.co_qualname.startswith("authenticated."), f"{cls.__name__}.{verb}"


def test_nothing_is_reachable_without_auth(jupyter: JupyterServer, rec: Recorder) -> None:
    """Every handler and verb, without credentials and with wrong ones: refused (403 or a
    redirect to the login page), and the service sees no request at all. The same requests
    with the Jupyter token do reach it (so this test can fail)."""
    found = registered()
    bad = [{}, {"Authorization": "token not-the-token"}, {"Cookie": "username-x=forged"}]
    with httpx.Client(base_url=jupyter.url.rstrip("/"), timeout=30) as c:
        for pattern, _cls, verb in found:
            if verb == "OPTIONS":
                continue
            for headers in bad:
                r = c.request(verb, concrete(pattern), headers=headers, content=b"{}")
                assert r.status_code in {401, 403} or (
                    r.status_code == 302 and "/login" in r.headers["location"]
                ), (pattern, verb, headers, r.status_code, r.text)
                assert "nr_service-token" not in r.text
        r = c.options(concrete(found[0][0]))
        assert r.status_code < 300 and not r.content
        assert rec.seen == [], [(s.method, s.path) for s in rec.seen]

        forwarded = [(p, v) for p, cls, v in found if cls is ForwardHandler and v != "OPTIONS"]
        for pattern, verb in forwarded:
            r = c.request(verb, concrete(pattern), headers=jupyter.headers, content=b"{}")
            assert r.status_code == 200, (verb, r.text)
    assert sorted(s.method for s in rec.seen) == sorted(v for _, v in forwarded)
    assert {s.path for s in rec.seen} == {"/services/nanorepo/datasets/S-NANO1/mutable"}


def test_config_needs_auth_and_answers_locally(jupyter: JupyterServer, rec: Recorder) -> None:
    with httpx.Client(timeout=30) as c:
        assert c.get(jupyter.api("_config")).status_code == 403
        r = c.get(jupyter.api("_config"), headers=jupyter.headers)
    assert r.status_code == 200, r.text
    conf = r.json()
    assert conf["service_url"] == rec.url and conf["service_url_set"] is True
    assert conf["token_set"] is True and "nr_service-token" not in r.text
    assert conf["storage"].endswith("storage") and conf["storage_mounted"] is True
    assert conf["api"] == "/nanorepo/api/"
    assert conf["user"]
    assert rec.seen == []
