"""The hub configuration pieces: what :func:`nanorepo.hub.configure` puts into a hub's
config (service, culler, roles, profiles), the thin ``hub/jupyterhub_config.py`` and the
settings ``nanorepo up`` hands to it."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tornado.web import HTTPError
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

import nanorepo.hub
from nanorepo.errors import ConfigurationError, InvalidInput
from nanorepo.hub import SERVER_SCOPES, LocalHub, NanorepoHub, configure
from nanorepo.hub._local import _THIN_CONFIG, config_file

ROOT = Path(__file__).resolve().parents[2]
ACCESS = "access:services!service=nanorepo"


def test_public_names() -> None:
    assert set(nanorepo.hub.__all__) == {
        "CHP_VERSION", "DEFAULT_PROFILES", "MARK", "SERVER_SCOPES", "LocalHub", "LocalSpawner",
        "NanorepoAuthenticator", "NanorepoHub", "OidcProvider", "build_local_view",
        "configure", "configure_local", "configure_oidc", "entitlement_groups", "find_proxy",
        "hub_principal", "kube_storage", "marked", "readable_embargoed", "stop_marked",
        "view_dir_name",
    }  # fmt: skip


def _by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in items}


def test_configure_adds_service_culler_roles_and_hooks(tmp_path: Path) -> None:
    c = Config()
    c.NanorepoHub.home = str(tmp_path)
    c.NanorepoHub.service_url = "http://127.0.0.1:9999"
    c.JupyterHub.services = [{"name": "other", "url": "http://x"}]
    hub = configure(c)
    services = _by_name(c.JupyterHub.services)
    assert list(services) == ["other", "nanorepo", "idle-culler"]
    svc = services["nanorepo"]
    assert svc["command"] == [sys.executable, "-m", "nanorepo", "serve"]
    assert svc["url"] == "http://127.0.0.1:9999" and svc["oauth_no_confirm"] is True
    assert svc["environment"]["NANOREPO_HOME"] == str(tmp_path.resolve())
    assert svc["environment"]["NANOREPO_DATABASE_URL"].startswith("sqlite:///")
    assert svc["environment"]["NANOREPO_ALLOW_ANONYMOUS"] == "1"
    assert "--timeout=3600" in services["idle-culler"]["command"]
    roles = _by_name(c.JupyterHub.load_roles)
    assert roles["user"]["scopes"] == ["self", ACCESS]  # every user may use the service
    assert set(roles["server"]["scopes"]) == {*SERVER_SCOPES, ACCESS}  # kernels too
    assert roles["idle-culler"]["services"] == ["idle-culler"]
    assert "delete:servers" in roles["idle-culler"]["scopes"]
    assert c.JupyterHub.allow_named_servers is True
    assert c.Spawner.default_url == "/lab"
    assert c.Spawner.pre_spawn_hook == hub.pre_spawn_hook
    assert [p["slug"] for p in c.KubeSpawner.profile_list] == ["small", "large"]
    assert c.KubeSpawner.profile_list[1]["kubespawner_override"] == {
        "cpu_limit": 4.0, "mem_limit": "16G", "cpu_guarantee": 4.0, "mem_guarantee": "16G"
    }  # fmt: skip
    assert hub.servers_url() == "http://127.0.0.1:9999/services/nanorepo"
    # the hub's pages: nanorepo's templates, a Repository link, the sign-ups scope
    assert c.JupyterHub.template_paths[0].endswith("nanorepo/hub/templates")
    assert c.JupyterHub.template_vars["nanorepo_service_url"] == "/services/nanorepo/"
    assert not c.JupyterHub.template_vars["nanorepo_accounts"]  # no sign-up accounts here
    assert "custom_scopes" not in c.JupyterHub
    configure(c)  # again: nothing is doubled
    assert [s["name"] for s in c.JupyterHub.services] == ["other", "nanorepo", "idle-culler"]
    assert len(c.JupyterHub.load_roles) == 3
    assert len(c.JupyterHub.template_paths) == 1
    # with NativeAuthenticator's sign-ups: Accounts in the menu, the service lists them
    from nanorepo.hub import NanorepoAuthenticator

    c.JupyterHub.authenticator_class = NanorepoAuthenticator
    configure(c)
    assert c.JupyterHub.template_vars["nanorepo_accounts"] is True
    assert "custom:nanorepo:signups" in c.JupyterHub.custom_scopes
    role = c.JupyterHub.load_roles[-1]
    assert role["services"] == ["nanorepo"] and role["scopes"] == ["custom:nanorepo:signups"]


def test_configure_options_for_kubernetes_and_restricted_access(tmp_path: Path) -> None:
    c = Config()
    c.NanorepoHub.home = str(tmp_path)
    c.NanorepoHub.service_command = []  # the service is a Deployment of its own
    c.NanorepoHub.all_users_use_service = False
    c.NanorepoHub.cull_idle = False
    c.NanorepoHub.service_url = "http://nanorepo:8000"
    c.JupyterHub.services = [{"name": "nanorepo", "api_token": "from-the-chart"}]
    configure(c)
    assert c.JupyterHub.services == [
        {"name": "nanorepo", "api_token": "from-the-chart", "url": "http://nanorepo:8000",
         "display": True, "oauth_no_confirm": True,
         "info": {"description": "nanorepo: reference data for nanoscopy (REST API)"}}
    ]  # fmt: skip
    assert [r["name"] for r in c.JupyterHub.load_roles] == ["server"]


def test_service_needs_a_home() -> None:
    with pytest.raises(ConfigurationError, match=r"NanorepoHub.home is not set"):
        configure(Config())


@pytest.mark.parametrize(
    ("profiles", "problem"),
    [
        ([{"slug": "Big One", "display_name": "x"}], "not a profile slug"),
        ([{"slug": "a"}], "needs a display_name"),
        ([{"slug": "a", "display_name": "A"}] * 2, "unique"),
    ],
)
def test_bad_profiles_are_refused(profiles: list[dict[str, Any]], problem: str) -> None:
    c = Config()
    c.NanorepoHub.profiles = profiles
    with pytest.raises(ConfigurationError, match=problem):
        NanorepoHub(config=c)


def test_profile_form_and_choice() -> None:
    c = Config()
    c.NanorepoHub.profiles = [
        {"slug": "small", "display_name": "<b>Small</b>", "mem_limit": "1G"},
        {"slug": "gpu", "display_name": "GPU", "default": True},
    ]
    hub = NanorepoHub(config=c)
    form = hub.options_form(None)
    assert "&lt;b&gt;Small&lt;/b&gt;" in form and "<b>Small" not in form  # escaped
    assert 'value="gpu" checked' in form
    assert hub.options_from_form({"profile": ["small"]}) == {"profile": "small"}
    assert hub.options_from_form({}) == {"profile": "gpu"}
    with pytest.raises(InvalidInput, match="no server size 'huge'"):
        hub.options_from_form({"profile": ["huge"]})
    spawner = SimpleNamespace(mem_limit=None, cpu_limit=None)
    hub.apply_user_options(spawner, {"profile": "small"})
    assert spawner.mem_limit == "1G" and spawner.cpu_limit is None
    with pytest.raises(HTTPError, match="no server size 'huge'; choose one of: small, gpu"):
        hub.apply_user_options(spawner, {"profile": "huge"})


def _load(path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Config:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def test_thin_config_file_configures_the_local_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = LocalHub(home=tmp_path / "home", port=8123, hub_port=8124, proxy_api_port=8125,
                     service_port=8126, proxy="/opt/chp")  # fmt: skip
    checkout = ROOT / "hub" / "jupyterhub_config.py"
    assert config_file(tmp_path) == checkout  # a source checkout runs its hub/ config
    fallback = tmp_path / "installed" / "jupyterhub_config.py"
    fallback.parent.mkdir()
    fallback.write_text(_THIN_CONFIG)
    for path in (checkout, fallback):
        c = _load(path, local.environ(), monkeypatch)
        assert c.JupyterHub.port == 8123 and c.JupyterHub.hub_port == 8124
        assert c.ConfigurableHTTPProxy.command == ["/opt/chp"]
        assert c.JupyterHub.db_url == f"sqlite:///{tmp_path / 'home' / 'hub' / 'jupyterhub.sqlite'}"
        assert c.JupyterHub.authenticator_class is nanorepo.hub.NanorepoAuthenticator
        assert c.Authenticator.admin_users == {"admin"}
        assert c.NativeAuthenticator.open_signup is False
        assert c.JupyterHub.spawner_class is nanorepo.hub.LocalSpawner
        assert c.Spawner.cmd == [sys.executable, "-m", "nanorepo.hub._singleuser"]
        assert c.SimpleLocalProcessSpawner.home_dir_template.endswith("/users/{username}")
        nanorepo_svc = _by_name(c.JupyterHub.services)["nanorepo"]
        assert nanorepo_svc["url"] == "http://127.0.0.1:8126"


@pytest.mark.parametrize(
    ("env", "problem"),
    [({}, "NANOREPO_HOME is not set"),
     ({"NANOREPO_HOME": "/x", "NANOREPO_UP_PORT": "eighty"}, "is not a port"),
     ({"NANOREPO_HOME": "/x", "NANOREPO_UP_HUB_PORT": "70000"}, "is not a port")],
)  # fmt: skip
def test_local_settings_refuse_bad_environment(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        LocalHub.from_env(env)


def test_local_settings_round_trip(tmp_path: Path) -> None:
    s = LocalHub(home=tmp_path, ip="0.0.0.0", port=1, database_url="postgresql://db/x")
    assert LocalHub.from_env(s.environ()) == s


def test_spawners_share_the_one_hub_object() -> None:
    """traitlets deep-copies config values per Spawner: the hook's hub must not be copied
    (each copy would open its own catalog connection pool)."""
    import copy

    hub = NanorepoHub()
    hook = copy.deepcopy(hub.pre_spawn_hook)
    assert hook.__self__ is hub
    assert copy.deepcopy({"hook": hub.pre_spawn_hook})["hook"].__self__ is hub
