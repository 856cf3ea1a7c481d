"""Issue 14, finding 9: metadata that could never be fixed in place was sealed.

Before: misspelt nested keys were sealed unread, 20 MB strings and NUL characters were
accepted, and a 5,000-deep YAML gave a traceback on the CLI (a 500 on upload). Now each
is refused with a clear message (a "did you mean" for typos) and nothing is written.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from nanorepo.errors import InvalidMetadata
from tests.conftest import METADATA, write_ome_tiff


def _meta(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "inputs" / "meta.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"image_acquisition": {"tecnique": "STED"}}, "did you mean 'technique'?"),
        ({"images": {"cell1": {"pixel_size_nm": {"z": 100}}}}, "did you mean 'pixel_sizes_nm'?"),
        ({"biosample": {"organism": "Homo sapiens", "organsim": "x"}}, "did you mean 'organism'"),
        ({"specimen": {"preparation": "a" * 70_000}}, "70,000 characters, more than the 65,536"),
        ({"specimen": {"preparation": "fixed\x00"}}, "contains a NUL character"),
    ],
    ids=["typo-section-key", "typo-image-key", "typo-open-key", "long-string", "nul"],
)
def test_unfixable_metadata_is_refused(
    sqlite_repo: Any, ome_tiff: Path, tmp_path: Path, change: dict[str, Any], needle: str
) -> None:
    meta = {**METADATA, **{k: {**(METADATA.get(k) or {}), **v} for k, v in change.items()}}
    p = _meta(tmp_path, yaml.safe_dump(meta, allow_unicode=True))
    with pytest.raises(InvalidMetadata) as e:
        sqlite_repo.deposit([ome_tiff], title="T", metadata=p)
    assert needle in str(e.value)
    _rows, total = sqlite_repo.list_datasets(offset=0, limit=5)
    assert total == 0


def _deep(n: int) -> str:
    return yaml.safe_dump(METADATA) + "analysed_data: " + "[" * n + "]" * n + "\n"


def test_a_5000_deep_yaml_is_a_clear_error_on_the_cli(
    cli_env: dict[str, str], ome_tiff: Path, tmp_path: Path
) -> None:
    p = _meta(tmp_path, _deep(5000))
    r = subprocess.run(
        [sys.executable, "-m", "nanorepo", "deposit", str(ome_tiff), "--title", "T",
         "--metadata", str(p)],
        env=cli_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "nested deeper than 32 levels" in r.stderr


def test_a_5000_deep_yaml_is_a_4xx_on_upload(service: Any, tmp_path: Path) -> None:
    tif = tmp_path / "u" / "cell.ome.tif"
    tif.parent.mkdir(parents=True)
    write_ome_tiff(tif)
    files = [
        ("files", ("cell.ome.tif", tif.read_bytes(), "image/tiff")),
        ("metadata", ("metadata.yaml", _deep(5000).encode(), "application/yaml")),
    ]
    r = httpx.post(
        f"{service.url}/deposits", files=files, data={"title": "Deep"},
        headers=service.seed.headers("alice"), timeout=120,
    )  # fmt: skip
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/problem+json"
    assert "nested deeper than" in r.json()["detail"]
