"""``nanorepo run --over``: one notebook over every matching dataset or image, in parallel,
each run its own record, resumable without repeating finished runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nanorepo.cli import cli
from nanorepo.connection import batch_items, connect, run_batch
from nanorepo.errors import InvalidInput
from nanorepo.repository import Repository
from nanorepo.testing._service import SeededRepository

pytestmark = pytest.mark.slow

BODY = """
import nanorepo, pathlib
ds = nanorepo.open(accession)
if pathlib.Path(fail_flag).exists() and ds.accession == fail_accession:
    raise RuntimeError("flagged to fail: " + ds.ref)
nanorepo.record("images", len(ds.images))
pathlib.Path(output_dir, "title.txt").write_text(ds.title)
"""


def test_a_batch_runs_every_match_and_resumes_only_what_did_not_succeed(
    sqlite_repo: Repository, seeded: SeededRepository, notebook, tmp_path: Path,
    cli_env: dict[str, str],
) -> None:  # fmt: skip
    flag = tmp_path / "fail-now"
    flag.write_text("")
    nb = notebook(BODY, accession="S-NANO1", fail_flag=str(flag),
                  fail_accession=seeded.granted, output_dir="x")  # fmt: skip
    settings = sqlite_repo.settings
    seen: list[tuple[int, int]] = []
    first = run_batch(nb, "pores", jobs=2, output_dir=tmp_path / "batch", settings=settings,
                      progress=lambda done, total, rec: seen.append((done, total)))  # fmt: skip
    assert first.status == "failed"
    by_item = {r["item"]: r for r in first.runs}
    refs = {f"{a}@v1" for a in (seeded.public, seeded.granted, seeded.hidden)}
    assert set(by_item) == refs
    assert by_item[f"{seeded.granted}@v1"]["status"] == "failed"
    assert [r["status"] for i, r in by_item.items() if i != f"{seeded.granted}@v1"] == [
        "succeeded", "succeeded",
    ]  # fmt: skip
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    for r in first.runs:
        rec = sqlite_repo.runs.get(r["id"])
        assert rec.batch == first.id and rec.item == r["item"]
        assert rec.parameters["accession"] == r["item"]  # pinned to the version found
        assert [i.ref for i in rec.inputs] == [r["item"]]

    # Resume through the CLI: the same command finds the batch and runs only the failed item.
    flag.unlink()
    env = {**cli_env, "NANOREPO_HOME": str(settings.home)}
    args = ["run", str(nb), "--over", "pores", "--jobs", "2", "--output-dir",
            str(tmp_path / "batch")]  # fmt: skip
    res = CliRunner().invoke(cli, args, env=env)
    assert res.exit_code == 0, res.output
    assert f"batch {first.id}  succeeded: 3 of 4 runs succeeded" in res.output
    again = sqlite_repo.runs.get_batch(first.id)
    assert again.status == "succeeded"
    ids_before = {r["id"] for r in first.runs}
    new = [r for r in again.runs if r["id"] not in ids_before]
    assert [(r["item"], r["status"]) for r in new] == [(f"{seeded.granted}@v1", "succeeded")]
    # a second attempt of an item gets its own output directory
    assert sorted(p.name for p in (tmp_path / "batch").iterdir()) == sorted(
        [*(r.replace("@", "_").replace("/", "_") for r in refs),
         f"{seeded.granted}_v1~2".replace("@", "_")]
    )  # fmt: skip


def test_batch_items_and_bad_batches(
    sqlite_repo: Repository, seeded: SeededRepository, notebook
) -> None:
    st = sqlite_repo.settings
    with connect(settings=st) as conn:
        assert batch_items(conn, f"accession:{seeded.public}", "image") == [
            f"{seeded.public}@v1/cell0"
        ]
        assert batch_items(conn, "zanzibar", "dataset") == [f"{seeded.hidden}@v1"]
        with pytest.raises(InvalidInput, match="--per must be"):
            batch_items(conn, "pores", "cell")
    plain = notebook("print(1)", name="plain.ipynb", threshold=3)
    with pytest.raises(InvalidInput, match="no `accession` parameter"):
        run_batch(plain, "pores", settings=st)
    no_image = notebook("print(1)", name="noimage.ipynb", accession="S-NANO1")
    with pytest.raises(InvalidInput, match="no `image` parameter"):
        run_batch(no_image, "pores", per="image", settings=st)
    assert sqlite_repo.runs.find(batch=None, limit=100) == sqlite_repo.runs.find(limit=100)
