"""helm/nanorepo rendered as Helm renders it, checked as Kubernetes 1.32 would check it.

The chart is rendered with Helm's own Go SDK (helm-python-sdk binds ``libhelm_c``: no
helm binary) with its two dependencies, the packed upstream charts of ``shared/charts``
placed in the chart's ignored ``charts/`` folder (as ``helm dependency build`` would), for
each example values file (minimal, trial with Gateway, production-like). Every rendered
object is validated against the Kubernetes 1.32 schemas (kubernetes-validate, strict: an
unknown field fails), custom resources against their CRD's schema. Then the security
properties are asserted on the objects, and, beyond what a render shows, on what the
rendered configuration does: z2jh's own jupyterhub_config.py runs with the rendered values
and nanorepo's extraConfig, KubeSpawner builds a user's pod from it after nanorepo's spawn
hook, and that pod is validated and inspected too; the Gateway's options handler is run
for users with and without grants.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from nanorepo.testing._service import SeededRepository, seed_repository

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "nanorepo"
EXAMPLES = ["minimal", "trial-gateway", "production"]
KUBE = "1.32.0"
SUBCHARTS = {"jupyterhub": "4.4.0", "dask-gateway": "2026.3.0"}
PRIVATE = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}


def _shared_charts() -> Path:
    for base in (ROOT.parent / "shared" / "charts", Path("/work/shared/charts")):
        if base.is_dir():
            return base
    raise RuntimeError(
        "the packed upstream charts are missing: shared/charts/ beside the checkout must "
        "hold jupyterhub-4.4.0.tgz and dask-gateway-2026.3.0.tgz"
    )


def _chart() -> helm.Chart:
    """The chart with its dependencies in charts/ (copied there once, atomically), loaded
    anew: Helm drops a disabled dependency from the loaded chart when it renders."""
    target = CHART / "charts"
    target.mkdir(exist_ok=True)
    for name, version in SUBCHARTS.items():
        archive = f"{name}-{version}.tgz"
        if not (target / archive).exists():
            tmp = target / f".{archive}.{id(target)}.tmp"
            shutil.copyfile(_shared_charts() / archive, tmp)
            tmp.replace(target / archive)
    return helm.Chart.load(CHART)


def _example(name: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(
        (ROOT / "helm" / "examples" / f"{name}.yaml").read_text()
    )
    return values


@functools.cache
def _rendered(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(_example(name)))


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects an install of ``values`` creates (schema checked first, as helm does)."""
    chart = _chart()
    chart.validate_schema(values)
    manifests = chart.render(
        chart.merge_values(values), name="nanorepo", namespace="nanorepo", is_install=True
    )
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for obj in yaml.safe_load_all(text):
            if obj:
                obj["__template__"] = path
                objects.append(obj)
    return objects


def _find(objects: Any, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if obj["kind"] == "Pod":
        return spec
    if "template" in spec and "spec" in spec["template"]:
        return spec["template"]["spec"]
    return None


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod.get("initContainers") or []) + list(pod.get("containers") or [])


# -- the chart and its dependencies ----------------------------------------------------


def test_dependencies_are_locked_as_helm_locks_them() -> None:
    """Chart.lock's digest is Helm's HashReq of Chart.yaml's dependencies and the lock
    (Go's json.Marshal of both lists, sha256), so `helm dependency build` accepts it; the
    packed charts are the versions declared, from their official repositories."""
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    lock = yaml.safe_load((CHART / "Chart.lock").read_text())
    req = meta["dependencies"]
    fields = ("name", "version", "repository", "condition")
    go_req = [{k: d[k] for k in fields if k in d} for d in req]
    go_lock = [{k: d[k] for k in ("name", "version", "repository")} for d in lock["dependencies"]]
    data = json.dumps([go_req, go_lock], separators=(",", ":")).encode()
    assert lock["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert {d["name"]: (d["version"], d["repository"]) for d in req} == {
        "jupyterhub": ("4.4.0", "https://hub.jupyter.org/helm-chart/"),
        "dask-gateway": ("2026.3.0", "https://helm.dask.org/"),
    }
    _chart()
    assert {d["name"]: d["status"] for d in helm.dependency_list(CHART)} == {
        "jupyterhub": "ok",
        "dask-gateway": "ok",
    }


def test_values_schema_is_current_and_lint_is_clean() -> None:
    _chart()
    check = [sys.executable, str(ROOT / "helm" / "generate_schema.py"), "--check"]
    assert subprocess.run(check, capture_output=True, text=True).returncode == 0, (
        "values.schema.json is stale: run python helm/generate_schema.py"
    )
    for name in EXAMPLES:
        report = helm.lint(CHART, _example(name), strict=True, kube_version=KUBE)
        assert report["errors"] == [], (name, report["errors"])


@functools.cache
def _crd_schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) -> openAPIV3Schema of the CRDs the dependencies ship."""
    out = {}
    archive = CHART / "charts" / "dask-gateway-2026.3.0.tgz"
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if "/crds/" not in member.name or not member.isfile():
                continue
            f = tar.extractfile(member)
            assert f is not None
            for crd in yaml.safe_load_all(f):
                if not crd:
                    continue
                s = crd["spec"]
                for v in s["versions"]:
                    key = (s["group"], v["name"], s["names"]["kind"])
                    out[key] = v["schema"]["openAPIV3Schema"]
    return out


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_object_is_valid_kubernetes_1_32(example: str) -> None:
    objects = _rendered(example)
    assert objects
    seen = set()
    for obj in objects:
        obj = {k: v for k, v in obj.items() if k != "__template__"}
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in seen, f"{key} rendered twice"
        seen.add(key)
        group, _, version = obj["apiVersion"].rpartition("/")
        crd = _crd_schemas().get((group, version, obj["kind"]))
        if crd is not None:
            try:
                jsonschema.validate(obj, crd)
            except jsonschema.ValidationError as exc:
                where = list(exc.absolute_path)
                raise AssertionError(f"{example}: {key}: {exc.message} at {where}") from None
            continue
        try:
            kubernetes_validate.validate(obj, KUBE, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{example}: {key}: {exc.message} at {list(exc.path)}") from None


def test_examples_install_what_they_say() -> None:
    kinds = {
        name: {(o["kind"], o["metadata"]["name"]) for o in _rendered(name)} for name in EXAMPLES
    }
    for name in EXAMPLES:
        assert ("Deployment", "nanorepo") in kinds[name]
        assert ("CronJob", "nanorepo-audit") in kinds[name]
        assert ("Deployment", "hub") in kinds[name]
    assert ("StatefulSet", "nanorepo-postgresql") in kinds["minimal"]
    assert ("StatefulSet", "nanorepo-postgresql") not in kinds["production"]
    assert ("PersistentVolumeClaim", "nanorepo-storage") in kinds["minimal"]
    assert ("PersistentVolumeClaim", "nanorepo-storage") not in kinds["production"]  # existing
    gateway = ("Deployment", "api-nanorepo-dask-gateway")
    assert gateway not in kinds["minimal"]
    assert gateway in kinds["trial-gateway"] and gateway in kinds["production"]


# -- bad values: refused, with what is wrong -------------------------------------------


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"servce": {}}, "servce"),  # a misspelt key is not ignored
        ({"jupyterhub": {"hub": {"imag": {}}}}, "imag"),  # nor inside the subcharts
        ({"dask-gateway": {"gateway": {"auth": {"typ": "x"}}}}, "typ"),
        ({"storage": {"subPath": "../../etc"}}, "/storage/subPath"),
        ({"storage": {"subPath": "/abs"}}, "/storage/subPath"),
        ({"storage": {"mountPath": "relative"}}, "/storage/mountPath"),
        ({"database": {"url": "sqlite:////tmp/x.sqlite"}}, "/database/url"),
        ({"service": {"env": {"LD_PRELOAD": "/tmp/x.so"}}}, "LD_PRELOAD"),
        ({"service": {"image": {"name": "x", "tag": ""}}}, "/service/image/tag"),
    ],
)
def test_schema_refuses_bad_values(values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as exc:
        _chart().validate_schema(values)
    assert where in str(exc.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "database.url is empty"),
        (
            {"database": {"url": "postgresql://u:p@db/n", "trial": {"enabled": True}}},
            "choose one",
        ),
        ({"database": {"trial": {"enabled": True}}}, "database.trial.password is empty"),
    ],
)
def test_database_choice_is_explained(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError) as exc:
        render(values)
    assert message in str(exc.value)


# -- security properties of the rendered objects ---------------------------------------


def _claims(pod: dict[str, Any], claim: str) -> dict[str, dict[str, Any]]:
    """Volumes of ``pod`` backed by ``claim``, by volume name."""
    return {
        v["name"]: v
        for v in pod.get("volumes") or []
        if v.get("persistentVolumeClaim", {}).get("claimName") == claim
    }


@pytest.mark.parametrize("example", EXAMPLES)
def test_only_the_service_writes_the_storage(example: str) -> None:
    objects = _rendered(example)
    claim = "cephfs-nanorepo" if example == "production" else "nanorepo-storage"
    writers = []
    for obj in objects:
        pod = _pod_spec(obj)
        if pod is None:
            continue
        volumes = _claims(pod, claim)
        for c in _containers(pod):
            for m in c.get("volumeMounts") or []:
                if m["name"] in volumes:
                    ro = m.get("readOnly") or volumes[m["name"]]["persistentVolumeClaim"].get(
                        "readOnly"
                    )
                    if not ro:
                        writers.append((obj["kind"], obj["metadata"]["name"], c["name"]))
    assert writers == [("Deployment", "nanorepo", "init"), ("Deployment", "nanorepo", "service")]
    audit = _pod_spec(_find(objects, "CronJob", "nanorepo-audit"))
    assert audit is not None
    assert _claims(audit, claim)["repository"]["persistentVolumeClaim"]["readOnly"] is True


def _secret_refs(pod: dict[str, Any]) -> set[tuple[str, str]]:
    refs = set()
    for c in _containers(pod):
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"]))
        for e in c.get("envFrom") or []:
            if "secretRef" in e:
                refs.add((e["secretRef"]["name"], "*"))
    for v in pod.get("volumes") or []:
        if "secret" in v:
            refs.add((v["secret"]["secretName"], "*"))
    return refs


@pytest.mark.parametrize("example", EXAMPLES)
def test_credentials_reach_only_the_pods_that_need_them(example: str) -> None:
    """The catalog's URL reaches the service, the audit job, the hub and the Gateway
    server; the service's hub token only the service. User-facing pods (placeholders,
    image pullers, Dask schedulers and workers built from the single-user image) get none."""
    db = ("nanorepo-database", "url")
    token = ("hub", "hub.services.nanorepo.apiToken")
    holders: dict[tuple[str, str], set[str]] = {db: set(), token: set()}
    for obj in _rendered(example):
        pod = _pod_spec(obj)
        if pod is None:
            continue
        refs = _secret_refs(pod)
        for secret in holders:
            if secret in refs:
                holders[secret].add(obj["metadata"]["name"])
    gateway = {"api-nanorepo-dask-gateway"} if example != "minimal" else set()
    assert holders[db] == {"nanorepo", "nanorepo-audit", "hub"} | gateway
    assert holders[token] == {"nanorepo"}
    singleuser = _find(_rendered(example), "StatefulSet", "user-placeholder")
    assert _secret_refs(_pod_spec(singleuser) or {}) == set()


@pytest.mark.parametrize("example", EXAMPLES)
def test_nanorepo_pods_run_unprivileged_without_api_tokens(example: str) -> None:
    for obj in _rendered(example):
        if not obj["__template__"].startswith("nanorepo/templates/"):
            continue
        pod = _pod_spec(obj)
        if pod is None:
            continue
        name = obj["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for c in _containers(pod):
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], (name, c["name"])


def _peers_allow(rule_peers: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    """Whether one of ``rule_peers`` (podSelectors of a NetworkPolicy rule) selects a pod
    with ``labels`` (an empty peer list means everyone)."""
    if not rule_peers:
        return True
    for peer in rule_peers:
        sel = peer.get("podSelector")
        if sel is None or "namespaceSelector" in peer:
            continue
        ok = all(labels.get(k) == v for k, v in (sel.get("matchLabels") or {}).items())
        for e in sel.get("matchExpressions") or []:
            assert e["operator"] == "In"
            ok = ok and labels.get(e["key"]) in e["values"]
        if ok:
            return True
    return False


SINGLEUSER = {"app": "jupyterhub", "component": "singleuser-server", "release": "nanorepo"}
WORKER = {"app.kubernetes.io/name": "dask-gateway", "app.kubernetes.io/component": "dask-worker"}


@pytest.mark.parametrize("example", EXAMPLES)
def test_network_policies_keep_user_pods_from_the_database(example: str) -> None:
    objects = _rendered(example)
    names = {o["metadata"]["name"] for o in objects if o["kind"] == "NetworkPolicy"}
    assert {"nanorepo", "nanorepo-audit", "singleuser", "hub", "proxy"} <= names
    # user pods: egress to the service (and the Gateway) by pod, but to no private
    # address (the database, the storage servers' admin interfaces) other than DNS
    su = _find(objects, "NetworkPolicy", "singleuser")["spec"]
    service_pod = {"app.kubernetes.io/name": "nanorepo", "app.kubernetes.io/component": "service"}
    db_pod = {"app.kubernetes.io/name": "nanorepo", "app.kubernetes.io/component": "database"}
    assert any(_peers_allow(r.get("to", []), service_pod) for r in su["egress"])
    assert not any(r.get("to") and _peers_allow(r["to"], db_pod) for r in su["egress"])
    for rule in su["egress"]:
        ports = {p.get("port") for p in rule.get("ports") or []}
        for peer in rule.get("to") or []:
            block = peer.get("ipBlock")
            if block and ports != {53}:
                assert block["cidr"] == "0.0.0.0/0"
                assert set(block.get("except", [])) >= PRIVATE
    # the service: reached by user servers and Dask workers
    svc = _find(objects, "NetworkPolicy", "nanorepo")["spec"]
    assert _peers_allow(svc["ingress"][0]["from"], SINGLEUSER)
    assert _peers_allow(svc["ingress"][0]["from"], WORKER)
    if example == "production":  # the external database by its address block, for our pods
        assert {"ipBlock": {"cidr": "10.20.0.0/24"}} in [
            p for r in svc["egress"] for p in r.get("to", [])
        ]
    else:
        db = _find(objects, "NetworkPolicy", "nanorepo-postgresql")["spec"]
        peers = db["ingress"][0]["from"]
        assert not _peers_allow(peers, SINGLEUSER) and not _peers_allow(peers, WORKER)
        assert _peers_allow(peers, {"app": "jupyterhub", "component": "hub"})
        assert db["egress"] == []


# -- what the rendered hub configuration does ------------------------------------------


def _hub_files(objects: Any, root: Path) -> None:
    """Lay out the hub's ConfigMap and Secret as the hub pod mounts them."""
    cm = _find(objects, "ConfigMap", "hub")["data"]
    secret = _find(objects, "Secret", "hub")
    (root / "config").mkdir(parents=True)
    (root / "secret").mkdir()
    for k, v in cm.items():
        (root / "config" / k).write_text(v)
    for k, v in (secret.get("data") or {}).items():
        (root / "secret" / k).write_bytes(base64.b64decode(v))


def _load_hub_config(objects: Any, root: Path, env: dict[str, str]) -> Any:
    """Run z2jh's jupyterhub_config.py (and so nanorepo's extraConfig) on the rendered
    values, with the files where the hub pod has them (under ``root`` instead of
    /usr/local/etc/jupyterhub) and the environment Kubernetes would give it."""
    from tornado.httpclient import AsyncHTTPClient
    from traitlets.config import Config

    _hub_files(objects, root)
    z2jh = (root / "config" / "z2jh.py").read_text().replace("/usr/local/etc/jupyterhub", str(root))
    module = SimpleNamespace()
    exec(compile(z2jh, "z2jh.py", "exec"), module.__dict__)
    code = (root / "config" / "jupyterhub_config.py").read_text()
    code = code.replace("/usr/local/etc/jupyterhub", str(root))
    c = Config()
    saved = sys.modules.get("z2jh")
    sys.modules["z2jh"] = module  # type: ignore[assignment]
    # the config makes tornado use curl, process-wide: put back what the others expect
    tornado_client = AsyncHTTPClient._save_configuration()
    path = list(sys.path)
    try:
        scope = {"get_config": lambda: c, "c": c, "__file__": str(root / "config" / "x.py")}
        exec(compile(code, "jupyterhub_config.py", "exec"), scope)
    finally:
        AsyncHTTPClient._restore_configuration(tornado_client)
        sys.path[:] = path
        if saved is None:
            sys.modules.pop("z2jh", None)
        else:
            sys.modules["z2jh"] = saved
    return c


@pytest.fixture
def seeded(sqlite_repo: Any, tmp_path: Path) -> SeededRepository:
    return seed_repository(sqlite_repo, tmp_path / "seed")


def _chart_env(objects: Any, database_url: str) -> dict[str, str]:
    """The environment the hub gets from nanorepo's ConfigMap and Secret."""
    env = dict(_find(objects, "ConfigMap", "nanorepo-hub")["data"])
    env["NANOREPO_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "POD_NAMESPACE": "nanorepo",
        "HUB_SERVICE_HOST": "10.0.0.10",
        "HUB_SERVICE_PORT": "8081",
        "PROXY_API_SERVICE_HOST": "10.0.0.11",
        "PROXY_API_SERVICE_PORT": "8001",
        "PROXY_PUBLIC_SERVICE_HOST": "10.0.0.12",
        "PROXY_PUBLIC_SERVICE_PORT": "80",
        "HELM_RELEASE_NAME": "nanorepo",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def _user_pod(c: Any, name: str, groups: tuple[str, ...] = ()) -> dict[str, Any]:
    """The pod KubeSpawner makes for hub user ``name`` after the spawn hook ran."""
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner

    user = SimpleNamespace(
        name=name,
        id=7,
        admin=False,
        url=f"/user/{name}/",
        groups=[SimpleNamespace(name=g) for g in groups],
    )

    async def build() -> Any:
        spawner = KubeSpawner(config=c, user=user, _mock=True)  # talks to no API server
        spawner.api_token = "the-users-own-token"
        try:
            await spawner.pre_spawn_hook(spawner)  # as JupyterHub calls it
        finally:
            spawner.pre_spawn_hook.__self__.close()  # the spawner's copy of NanorepoHub
        async with ApiClient() as api:
            return api.sanitize_for_serialization(await spawner.get_pod_manifest())

    pod = asyncio.run(build())
    assert isinstance(pod, dict)
    return pod


def test_user_pods_mount_the_public_area_and_their_grants_read_only(
    seeded: SeededRepository,
    sqlite_repo: Any,
    tmp_path: Path,
    hub_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """z2jh's hub configuration with nanorepo's extraConfig, run on the rendered values;
    KubeSpawner's pod for bob (granted one embargoed dataset) and carol (none)."""
    objects = _rendered("trial-gateway")
    for k, v in _chart_env(objects, sqlite_repo.settings.database_url).items():
        monkeypatch.setenv(k, v)
    c = _load_hub_config(objects, tmp_path / "etc", hub_env)
    # KubeSpawner loads a client configuration when made; building a pod manifest never
    # reaches the (unreachable) API server it names
    (tmp_path / "kubeconfig").write_text(_KUBECONFIG)
    from kubernetes_asyncio.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))
    names = [s["name"] for s in c.JupyterHub.services]
    assert "nanorepo" in names and "dask-gateway" in names
    nanorepo = next(s for s in c.JupyterHub.services if s["name"] == "nanorepo")
    assert nanorepo["url"] == "http://nanorepo:8000" and nanorepo["api_token"]
    assert "command" not in nanorepo  # a Deployment, not a hub subprocess
    pods = {u: _user_pod(c, u) for u in ("bob", "carol")}
    storage = "/srv/nanorepo/storage"
    for user, pod in pods.items():
        kubernetes_validate.validate(pod, KUBE, strict=True)
        spec = pod["spec"]
        assert spec["automountServiceAccountToken"] is False
        vols = {v["name"]: v for v in spec["volumes"]}
        assert vols["nanorepo-storage"]["persistentVolumeClaim"] == {
            "claimName": "nanorepo-storage",
            "readOnly": True,
        }
        mounts = [
            m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "nanorepo-storage"
        ]
        assert all(m["readOnly"] is True for m in mounts)
        expected = [(f"{storage}/public", "storage/public")]
        if user == "bob":
            expected.append(
                (f"{storage}/embargoed/{seeded.granted}", f"storage/embargoed/{seeded.granted}")
            )
        assert [(m["mountPath"], m["subPath"]) for m in mounts] == expected
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["NANOREPO_STORAGE"] == storage
        assert env["NANOREPO_URL"] == "http://nanorepo:8000/services/nanorepo"
        assert env["DASK_GATEWAY__ADDRESS"] == "http://proxy-public/services/dask-gateway"
        assert env["JUPYTERHUB_API_TOKEN"] == "the-users-own-token"
        text = json.dumps(spec)
        assert "NANOREPO_DATABASE_URL" not in text and sqlite_repo.settings.database_url not in text
        assert nanorepo["api_token"] not in text
        assert not any("valueFrom" in e for e in spec["containers"][0]["env"])


def test_gateway_clusters_get_the_users_view_read_only(
    seeded: SeededRepository, sqlite_repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Gateway server's configuration file, as rendered (the dask-gateway chart's with
    nanorepo's extraConfig), run with the Gateway's own classes:
    bob's cluster pods mount the public area and his grant, carol's only the public area."""
    from dask_gateway_server.models import User
    from traitlets.config import Config

    objects = _rendered("trial-gateway")
    for k, v in _chart_env(objects, sqlite_repo.settings.database_url).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "the-gateway-services-token")
    cm = _find(objects, "ConfigMap", "api-nanorepo-dask-gateway")["data"]
    c = Config()
    scope: dict[str, Any] = {"c": c, "get_config": lambda: c, "__file__": "/etc/dask-gateway/x.py"}
    exec(compile(cm["dask_gateway_config.py"], "dask_gateway_config.py", "exec"), scope)
    assert c.DaskGateway.authenticator_class.endswith("JupyterHubAuthenticator")
    # only hub tokens with access:services!service=dask-gateway may make clusters
    assert c.JupyterHubAuthenticator.jupyterhub_service_name == "dask-gateway"
    options = c.Backend.cluster_options
    try:
        for name, grants in (("bob", [seeded.granted]), ("carol", [])):
            user = User(name, groups=())
            conf = options.get_configuration(options.parse_options({"worker_cores": 2}), user)
            assert conf["worker_cores"] == 2
            pod, container = conf["worker_extra_pod_config"], conf["worker_extra_container_config"]
            assert conf["scheduler_extra_pod_config"] == pod
            assert pod["automountServiceAccountToken"] is False
            assert pod["volumes"] == [
                {
                    "name": "nanorepo-storage",
                    "persistentVolumeClaim": {"claimName": "nanorepo-storage", "readOnly": True},
                }
            ]
            assert [(m["subPath"], m["readOnly"]) for m in container["volumeMounts"]] == [
                ("storage/public", True)
            ] + [(f"storage/embargoed/{a}", True) for a in grants]
            assert conf["environment"]["NANOREPO_STORAGE"] == "/srv/nanorepo/storage"
        # what a user asks for is bounded, and cannot name pod settings of its own
        with pytest.raises(ValueError, match="worker_cores"):
            options.parse_options({"worker_cores": 64})
        with pytest.raises(ValueError, match="worker_extra_pod_config"):
            options.parse_options({"worker_extra_pod_config": {"volumes": []}})
    finally:
        scope["_nanorepo"].close()
