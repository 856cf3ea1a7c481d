"""The ``nanorepo`` command as a user runs it: real processes, exit codes, messages."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tifffile

from tests.conftest import write_ome_tiff


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(
        [sys.executable, "-m", "nanorepo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if check and p.returncode != 0:
        raise AssertionError(f"nanorepo {' '.join(args)} failed ({p.returncode}):\n{p.stderr}")
    return p


def catalog_rows(env: dict[str, str]) -> dict[str, int]:
    db = Path(env["NANOREPO_HOME"]) / "catalog.sqlite"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        return {
            t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            for t in (
                "dataset",
                "version",
                "image",
                "file",
                "mutable_revision",
                "accession",
                "deposit",
            )
        }


def storage_files(env: dict[str, str]) -> list[str]:
    root = Path(env["NANOREPO_HOME"]) / "storage"
    return (
        sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        if root.exists()
        else []
    )


def test_deposit_prints_accession_last_and_json(
    cli_env: dict[str, str], ome_tiff: Path, metadata_file: Path
) -> None:
    p = run(cli_env, "deposit", str(ome_tiff), "--title", "Pores", "--metadata", str(metadata_file))
    accession = p.stdout.strip().splitlines()[-1]
    assert accession.startswith("S-NANO")
    other = ome_tiff.with_name("other.ome.tif")
    write_ome_tiff(other, seed=5)
    p = run(
        cli_env,
        "deposit",
        str(other),
        "--title",
        "Other",
        "--metadata",
        str(metadata_file),
        "--json",
    )
    doc = json.loads(p.stdout)
    assert doc["accession"] != accession
    assert doc["version"] == 1
    assert doc["images"] == ["other"]

    shown = json.loads(run(cli_env, "show", accession, "--json").stdout)
    assert Path(shown["images"][0]["storage_path"]).is_dir()
    listed = json.loads(run(cli_env, "list", "--json").stdout)
    assert listed["total"] == 2
    found = json.loads(run(cli_env, "search", "other", "technique:STED", "--json").stdout)
    assert [i["accession"] for i in found["items"]] == [doc["accession"]]
    found = json.loads(run(cli_env, "search", "organism:Homo sapiens", "--json").stdout)
    assert found["total"] == 2

    run(cli_env, "set", accession, "license=CC0-1.0", "--reason", "waived")
    hist = json.loads(run(cli_env, "history", accession, "--json").stdout)
    assert hist[-1]["new"] == "CC0-1.0"
    assert hist[-1]["reason"] == "waived"
    human = run(cli_env, "history", accession).stdout
    assert "waived" in human


def test_verify_reports_mismatch_missing_unexpected(
    cli_env: dict[str, str], tmp_path: Path, metadata_file: Path
) -> None:
    src = tmp_path / "inputs" / "vol.ome.tif"
    write_ome_tiff(src, shape=(4, 1100, 700))  # > 512 px: a pyramid of several levels
    acc = run(
        cli_env, "deposit", str(src), "--title", "V", "--metadata", str(metadata_file)
    ).stdout.split()[-1]
    ok = run(cli_env, "verify", acc, "--json")
    (rep,) = json.loads(ok.stdout)
    assert rep["ok"]
    assert rep["objects_checked"] > 5

    shown = json.loads(run(cli_env, "show", acc, "--json").stdout)
    img = Path(shown["images"][0]["storage_path"])
    shards = sorted(p for p in (img / "0").rglob("*") if p.is_file() and p.name != "zarr.json")
    assert shards, "level 0 has stored shards"
    # 1. one flipped byte in a shard
    raw = bytearray(shards[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shards[0].write_bytes(bytes(raw))
    # 2. a missing object (zarr itself would silently read fill values)
    victim = sorted(p for p in (img / "1").rglob("*") if p.is_file() and p.name != "zarr.json")[0]
    victim.unlink()
    # 3. an unexpected object inside the image
    (img / "0" / "c" / "stray").write_bytes(b"x")

    bad = run(cli_env, "verify", acc, "--json", check=False)
    assert bad.returncode == 1
    (rep,) = json.loads(bad.stdout)
    kinds = {(p["kind"], p["path"].split(".ome.zarr/")[-1]) for p in rep["problems"]}
    assert ("mismatch", str(shards[0].relative_to(img))) in kinds
    assert ("missing", str(victim.relative_to(img))) in kinds
    assert ("unexpected", "0/c/stray") in kinds
    human = run(cli_env, "verify", acc, check=False)
    assert human.returncode == 1
    assert "mismatch" in human.stdout


def _assert_refused(
    env: dict[str, str], args: list[str], needles: list[str], *, code_min: int = 1
) -> str:
    before_rows, before_files = catalog_rows(env), storage_files(env)
    p = run(env, *args, check=False)
    assert p.returncode >= code_min, p.stdout
    msg = p.stderr
    for n in needles:
        assert n in msg, f"{n!r} not in:\n{msg}"
    assert "Traceback" not in msg
    assert catalog_rows(env) == before_rows
    assert storage_files(env) == before_files
    return msg


def test_bad_input_is_refused_clearly_and_changes_nothing(
    cli_env: dict[str, str], tmp_path: Path, ome_tiff: Path, metadata_file: Path
) -> None:
    # A first, good dataset so "nothing changed" is checked against a non-empty repository.
    run(cli_env, "deposit", str(ome_tiff), "--title", "Good", "--metadata", str(metadata_file))
    inputs = tmp_path / "inputs"
    good = inputs / "good2.ome.tif"
    write_ome_tiff(good, shape=(2, 300, 300), seed=9)

    truncated = inputs / "truncated.ome.tif"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _assert_refused(
        cli_env,
        ["deposit", str(truncated), "--title", "T", "--metadata", str(metadata_file)],
        ["truncated.ome.tif"],
    )

    corrupt = inputs / "corrupt.tif"
    raw = bytearray(good.read_bytes())
    raw[4:8] = b"\xff\xff\xff\x7f"  # first IFD offset points past the end
    corrupt.write_bytes(bytes(raw))
    _assert_refused(
        cli_env,
        ["deposit", str(corrupt), "--title", "T", "--metadata", str(metadata_file)],
        ["corrupt.tif"],
    )

    text = inputs / "notes.tif"
    text.write_text("these are my notes, not an image\n" * 10)
    _assert_refused(
        cli_env,
        ["deposit", str(text), "--title", "T", "--metadata", str(metadata_file)],
        ["notes.tif"],
    )

    bad_meta = inputs / "bad.yaml"
    bad_meta.write_text(
        "study: {license: CC-BY-4.0}\nbiosample: {}\nimage_acquisition: {technique: X-ray}\n"
        "images: {good2: {pixel_sizes_nm: {x: 55}}, ghost: {}}\n"
    )
    msg = _assert_refused(
        cli_env, ["deposit", str(good), "--title", "T", "--metadata", str(bad_meta)],
        ["bad.yaml", "biosample.organism", "X-ray", "55", "ghost"],
    )  # fmt: skip
    assert "metadata problems" in msg  # all at once

    # A NUL in a key/value (C-string padding from instrument software) cannot be stored
    nul_meta = inputs / "nul.yaml"
    nul_meta.write_text(
        metadata_file.read_text() + 'images: {good2: {key_values: {note: "pad\\0"}}}\n'
    )
    _assert_refused(
        cli_env, ["deposit", str(good), "--title", "T", "--metadata", str(nul_meta)],
        ["nul.yaml", "good2", "note", "NUL", "images.good2.key_values"],
    )  # fmt: skip

    # Damage inside compressed pixel data is found only while converting: still refused,
    # still nothing changed (the reserved accession is released).
    damaged = inputs / "damaged.ome.tif"
    write_ome_tiff(damaged, shape=(6, 256, 256), seed=4, compression="zlib")
    with tifffile.TiffFile(damaged) as tif:
        offset, count = tif.pages[4].dataoffsets[0], tif.pages[4].databytecounts[0]
    raw = bytearray(damaged.read_bytes())
    raw[offset + 2 : offset + count - 8] = bytes(count - 10)
    damaged.write_bytes(bytes(raw))
    _assert_refused(
        cli_env, ["deposit", str(damaged), "--title", "T", "--metadata", str(metadata_file)],
        ["damaged.ome.tif"],
    )  # fmt: skip
    assert not list((Path(cli_env["NANOREPO_HOME"]) / "staging").glob("*/dataset"))

    _assert_refused(
        cli_env,
        ["deposit", str(good), "--title", "T"],
        ["study.license", "biosample.organism", "technique"],
    )
    _assert_refused(cli_env, ["show", "S-NANO999"], ["S-NANO999"])
    _assert_refused(cli_env, ["show", "../../etc/passwd"], ["not a dataset reference"])
    _assert_refused(cli_env, ["verify", "S-NANO1@v7"], ["no version 7"])
    _assert_refused(
        cli_env, ["set", "S-NANO1", "owner=mallory", "--reason", "x"], ["not an editable"]
    )
    _assert_refused(
        cli_env,
        ["deposit", str(inputs / "missing.tif"), "--title", "T"],
        ["missing.tif", "no such file"],
    )

    outside = dict(cli_env, NANOREPO_ALLOWED_ROOTS=str(tmp_path / "dropbox"))
    _assert_refused(
        outside, ["deposit", str(good), "--title", "T", "--metadata", str(metadata_file)],
        ["good2.ome.tif", "outside the directories"],
    )  # fmt: skip


@pytest.mark.parametrize("failpoint", ["after-image", "before-publish", "after-publish"])
def test_kill_at_failpoint_leaves_nothing_visible_and_resumes(
    cli_env: dict[str, str], tmp_path: Path, metadata_file: Path, failpoint: str
) -> None:
    inputs = []
    for i in range(2):
        p = tmp_path / "inputs" / f"cell{i}.ome.tif"
        write_ome_tiff(p, shape=(2, 200, 200), seed=i)
        inputs.append(str(p))
    args = ["deposit", *inputs, "--title", "Crash", "--metadata", str(metadata_file)]
    p = run(dict(cli_env, NANOREPO_FAILPOINT=failpoint), *args, check=False)
    assert p.returncode == -signal.SIGKILL
    public = Path(cli_env["NANOREPO_HOME"]) / "storage" / "public"
    published = list(public.glob("S-NANO*")) if public.exists() else []
    if failpoint == "after-publish":
        # The complete directory is in place; only the catalog commit is missing.
        assert len(published) == 1
        assert (published[0] / "versions" / "v1" / "manifest.json").exists()
    else:
        assert published == []
    listed = json.loads(run(cli_env, "list", "--json").stdout)
    # Staged data that was complete (state 'publishing') is finished by the next command;
    # an interrupted conversion stays invisible until its command is run again.
    assert listed["total"] == (0 if failpoint == "after-image" else 1)
    again = run(cli_env, *args, check=False)
    if failpoint == "after-image":
        assert again.returncode == 0, again.stderr
        assert "converted by an earlier run" in again.stderr
    else:
        # finished by the next command: running it again reports the accession (exit 0)
        assert again.returncode == 0, again.stderr
        assert "S-NANO1" in again.stdout + again.stderr
    (acc,) = [i["accession"] for i in json.loads(run(cli_env, "list", "--json").stdout)["items"]]
    assert json.loads(run(cli_env, "verify", acc, "--json").stdout)[0]["ok"]


def test_kill_at_random_moments(
    cli_env: dict[str, str], tmp_path: Path, metadata_file: Path
) -> None:
    """SIGKILL at several moments of a real deposit: never a half dataset, always resumable."""
    inputs = []
    for i in range(3):
        p = tmp_path / "inputs" / f"cell{i}.ome.tif"
        write_ome_tiff(p, shape=(8, 600, 600), seed=i)
        inputs.append(str(p))
    args = [
        sys.executable,
        "-m",
        "nanorepo",
        "deposit",
        *inputs,
        "--title",
        "R",
        "--metadata",
        str(metadata_file),
    ]
    public = Path(cli_env["NANOREPO_HOME"]) / "storage" / "public"
    for delay in (0.3, 0.8, 1.5, 2.5):
        proc = subprocess.Popen(
            args,
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        listed = json.loads(run(cli_env, "list", "--json").stdout)
        dirs = list(public.glob("S-NANO*")) if public.exists() else []
        if listed["total"]:
            break  # it finished before the kill
        assert dirs == [] or all((d / "versions" / "v1" / "manifest.json").exists() for d in dirs)
    final = run(cli_env, *args[3:], check=False)
    listed = json.loads(run(cli_env, "list", "--json").stdout)
    assert listed["total"] == 1
    assert final.returncode == 0 or "deposited already" in final.stderr
    acc = listed["items"][0]["accession"]
    assert json.loads(run(cli_env, "verify", acc, "--json").stdout)[0]["ok"]
    assert os.listdir(Path(cli_env["NANOREPO_HOME"]) / "staging") == []


def test_only_init_creates_a_repository(tmp_path: Path) -> None:
    """Anything else that finds no repository says where it looked and how to point at one,
    and leaves the directory as it was; `nanorepo init` creates it, once."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTERHUB_"))}
    env |= {"HOME": str(tmp_path / "user"), "COLUMNS": "200"}
    nowhere = run(env, "list", check=False)
    assert nowhere.returncode == 1
    assert "not pointed at a nanorepo repository" in nowhere.stderr
    assert "NANOREPO_URL" in nowhere.stderr and "nanorepo init" in nowhere.stderr
    env["NANOREPO_HOME"] = str(home)
    for args in (["list"], ["search", "pores"], ["show", "S-NANO1"], ["verify", "S-NANO1"]):
        refused = run(env, *args, check=False)
        assert refused.returncode == 1, args
        assert f"there is no nanorepo repository at {home}" in refused.stderr, args
        assert "Traceback" not in refused.stderr
    assert not home.exists() and not (tmp_path / "user").exists()
    made = run(env, "init")
    assert f"created an empty repository: {home}" in made.stderr
    assert (home / "catalog.sqlite").is_file() and (home / "storage").is_dir()
    assert "0 of 0 dataset(s)" in run(env, "list").stderr
    assert f"repository already there: {home}" in run(env, "init").stderr
