"""Search, facets and the image table of the REST service on a 10,000-dataset SQLite catalog.

What is measured
----------------
Latency (p50, p99, mean) and throughput of the live service (``uvicorn`` in its own process,
as an operator runs it, on loopback) over a SQLite catalog of **10,000 datasets and about
1,000,000 images**, for:

* ``GET /datasets?q=WORD``: a word in every document, a word in ~3 % of them, a rare word
  (a handful of documents), two words;
* field filters (``technique:STED organism:"Homo sapiens"``) and words + filters;
* ``GET /facets`` with no query, a common word and a filter;
* paging deep: following ``next`` cursors through every result of a broad query;
* ``GET /datasets/{acc}/versions/v1/images?filter=...&sort=...`` on a version with 100,000
  images (first pages, and following cursors);

each as an anonymous caller and as a signed-in user who is granted ~350 embargoed datasets
(directly and through a group), with 1 client (the latency of one request alone) and with
8 concurrent clients (what a busy repository sees; on two shared cores the clients, the
server and the database compete for the same CPUs, so latency there includes queueing).

Goal: search and facets p99 < 100 ms on SQLite.

The catalog is built once (~2-4 min) and cached in ``benchmarks/.data/search-catalog/``:
rows go straight into the tables with SQLAlchemy Core ``insert()`` executemany in large
batches, together with the search document and field values :func:`nanorepo.search.
index_dataset` would write (checked against ``index_dataset`` on a sample of datasets at
build time). The data is varied like a real repository: five techniques (STED, SMLM, SIM,
confocal, MINFLUX; some datasets use two), ~45 organisms and cell lines, ~20 fluorophores,
~30 targets, four licences, ~400 authors, Zipf-distributed description words, 5 % embargoed
datasets with grants to users and a group, and ~100 images per dataset with file-level
key/values (condition, cell_line, plate, well, field, replicate). The image table filters and
sorts on the ``image_key_value`` side table, which the catalog's triggers fill as the image
rows go in (checked at build time); a catalog cached before migration 0005 is brought
forward when the benchmark opens it (the backfill takes about a minute for 1,000,000 images).

Run ``python benchmarks/bench_search.py [--rebuild] [--requests N] [--only search|images]``
(``--only images``: just the image table). Not a test; prints tables only.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
from rich.console import Console

WHAT = """
p50/p99 latency and requests/s of the live service (separate uvicorn process, loopback)
over a cached SQLite catalog of 10,000 datasets and ~1,000,000 images: full-text search,
field filters, facets, deep cursor paging, and the image table of a 100,000-image version;
as an anonymous caller and as a user granted ~350 embargoed datasets; 1 client and 8
concurrent clients. Goal: search and facets p99 < 100 ms on SQLite.
"""

HOME = C.DATA_DIR / "search-catalog"
MARKER = HOME / "catalog.json"
#: Bump when the generated catalog changes shape, so an old cache is rebuilt.
CATALOG_FORMAT = 1
N_DATASETS = 10_000
N_IMAGES = 1_000_000
BIG_IMAGES = 100_000
EMBARGOED_SHARE = 0.05
GOAL_MS = 100.0
SEED = 20261121

# -- vocabulary -------------------------------------------------------------------------

TECHNIQUES = (("STED", 30), ("SMLM", 25), ("SIM", 20), ("confocal", 20), ("MINFLUX", 5))
INSTRUMENTS = {
    "STED": ("Abberior Facility Line", "Leica Stellaris 8 STED", "Abberior STEDYCON"),
    "SMLM": ("Nikon N-STORM", "ONI Nanoimager", "custom TIRF SMLM"),
    "SIM": ("Zeiss Elyra 7", "GE OMX SR", "Nikon N-SIM S"),
    "confocal": ("Zeiss LSM 980 Airyscan", "Leica SP8", "Nikon AX R"),
    "MINFLUX": ("Abberior MINFLUX",),
}
ORGANISMS = (
    ("Homo sapiens", ("HeLa", "U2OS", "HEK293T", "A549", "MCF7", "RPE-1", "Caco-2", "Jurkat",
                      "HAP1", "iPSC-derived neurons", "HUVEC", "SH-SY5Y", "HT-1080", "K562")),
    ("Mus musculus", ("NIH-3T3", "hippocampal neurons", "C2C12", "mESC", "MEF", "B16-F10")),
    ("Rattus norvegicus", ("cortical neurons", "PC12", "INS-1", "H9c2")),
    ("Chlorocebus aethiops", ("COS-7", "Vero")),
    ("Canis lupus familiaris", ("MDCK",)),
    ("Cricetulus griseus", ("CHO-K1",)),
    ("Drosophila melanogaster", ("S2", "larval NMJ")),
    ("Saccharomyces cerevisiae", ("BY4741",)),
    ("Schizosaccharomyces pombe", ("972 h-",)),
    ("Escherichia coli", ("MG1655",)),
    ("Caulobacter crescentus", ("CB15N",)),
    ("Bacillus subtilis", ("PY79",)),
    ("Danio rerio", ("embryo",)),
    ("Caenorhabditis elegans", ("N2",)),
    ("Arabidopsis thaliana", ("Col-0 root",)),
    ("Xenopus laevis", ("egg extract",)),
    ("Dictyostelium discoideum", ("AX2",)),
    ("Plasmodium falciparum", ("3D7",)),
    ("Toxoplasma gondii", ("RH",)),
)  # fmt: skip
TARGETS = (
    ("Nup96", "nuclear pore complexes"), ("Nup107", "nuclear pore complexes"),
    ("alpha-tubulin", "microtubules"), ("beta-tubulin", "microtubules"),
    ("actin", "actin filaments"), ("TOM20", "mitochondria"), ("clathrin", "clathrin-coated pits"),
    ("vimentin", "intermediate filaments"), ("lamin A/C", "the nuclear lamina"),
    ("H2B", "chromatin"), ("PSD-95", "synapses"), ("bassoon", "synapses"),
    ("synaptophysin", "synaptic vesicles"), ("Sec61b", "the endoplasmic reticulum"),
    ("caveolin-1", "caveolae"), ("beta2-spectrin", "the axonal cytoskeleton"),
    ("FtsZ", "the division ring"), ("MreB", "the bacterial cytoskeleton"),
    ("CENP-A", "centromeres"), ("pericentrin", "centrosomes"), ("LC3", "autophagosomes"),
    ("EEA1", "early endosomes"), ("LAMP1", "lysosomes"), ("giantin", "the Golgi apparatus"),
    ("paxillin", "focal adhesions"), ("ZO-1", "tight junctions"), ("RNA Pol II", "transcription sites"),
    ("dynein", "cilia"), ("acetylated tubulin", "cilia"), ("TFAM", "mitochondrial nucleoids"),
)  # fmt: skip
FLUOROPHORES = (
    "Alexa Fluor 647", "Alexa Fluor 488", "Alexa Fluor 568", "Atto 647N", "Atto 488",
    "Abberior STAR RED", "Abberior STAR 580", "mEos3.2", "PA-JF549", "JF646", "SiR",
    "CF680", "mNeonGreen", "mScarlet", "EGFP", "Cy3B", "DyLight 650", "Atto 655", "AF647",
    "mMaple3",
)  # fmt: skip
LICENSES = (("CC-BY-4.0", 60), ("CC0-1.0", 30), ("CC-BY-SA-4.0", 6), ("CC-BY-NC-4.0", 4))
KEYWORDS = (
    "nuclear pore", "cytoskeleton", "neuroscience", "cell division", "membrane trafficking",
    "organelle contacts", "ground truth", "reference data", "training", "live cell",
    "fixed cells", "expansion", "correlative", "3D", "multicolour", "drift correction",
    "quantification", "segmentation", "benchmark", "protocol", "nanoscale organisation",
    "mitosis", "bacteria", "yeast", "development", "synapse", "cilia", "infection",
    "DNA-PAINT", "counting", "stoichiometry", "cryo", "tissue", "organoid", "plant",
    "photoswitching", "resolution", "FRC", "calibration", "beads",
)  # fmt: skip
FIRST = ("Ana", "Ben", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ines", "Jonas",
         "Kai", "Lena", "Marta", "Nils", "Olga", "Pavel", "Qin", "Rosa", "Sven", "Tara")  # fmt: skip
LAST = ("Müller", "Schmidt", "Nakamura", "García", "Rossi", "Novak", "Kowalski", "Jensen",
        "Dubois", "Silva", "Kim", "Ivanova", "Larsen", "Okafor", "Patel", "Haddad", "Berg",
        "Costa", "Wang", "Fischer")  # fmt: skip
CONDITIONS = ("control", "DMSO", "nocodazole", "taxol", "siRNA-scrambled", "siRNA-NUP96",
              "heat-shock", "starved")  # fmt: skip
#: Description filler: pronounceable pseudo-words drawn with Zipf frequencies, so a few
#: words are everywhere and most are rare (as in real text).
SYLLABLES = ("ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "ve", "zu", "bri", "dra", "fle",
             "gro", "kli", "pra", "stu", "tri", "vo", "xa")  # fmt: skip
COMMON_WORD = "cells"  # in every description
MEDIUM_WORD = "microtubules"  # ~7 % of datasets (two of the thirty targets)


def _weighted(rng: random.Random, pairs: Sequence[tuple[str, int]]) -> str:
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]


def _pseudo_words(n: int) -> list[str]:
    rng = random.Random(SEED + 1)
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(3, 4))))
    return sorted(words)


# -- the generated catalog ----------------------------------------------------------------


@dataclass
class Plan:
    """One generated dataset: its rows and what ``index_dataset`` would make of them."""

    id: int
    accession: str
    owner: str
    access: str
    title: str
    mutable: dict[str, Any]
    record: dict[str, Any]
    images: list[dict[str, Any]]
    grants: list[tuple[str, str]]


def _image_rows(rng: random.Random, n: int, *, techniques: list[str], cell_line: str,
                labels: list[dict[str, str]]) -> list[dict[str, Any]]:  # fmt: skip
    plates = max(1, n // 384 + 1)
    rows = []
    channels = [
        {"name": lab["target"], "fluorophore": lab["fluorophore"],
         "color": ("FF00FF", "00FF00", "00FFFF")[i % 3], "window": [100.0, 2000.0]}
        for i, lab in enumerate(labels)
    ]  # fmt: skip
    for i in range(n):
        well = f"{'ABCDEFGHIJKLMNOP'[rng.randrange(16)]}{rng.randint(1, 24):02d}"
        kv = {
            "condition": rng.choice(CONDITIONS),
            "cell_line": cell_line if rng.random() > 0.05 else "parental " + cell_line,
            "plate": f"P{rng.randint(1, plates)}",
            "well": well,
            "field": str(rng.randint(1, 12)),
            "replicate": str(rng.randint(1, 3)),
        }
        rows.append(
            {
                "name": f"cell{i:06d}",
                "technique": techniques[i % len(techniques)],
                "key_values": kv,
                "channels": channels,
                "size_bytes": rng.randint(10, 400) * 1_000_000,
            }
        )
    return rows


def generate(out: Console) -> Iterator[Plan]:
    """The 10,000 datasets, deterministic (seeded)."""
    rng = random.Random(SEED)
    filler = _pseudo_words(3000)
    zipf = [1.0 / (r + 1) for r in range(len(filler))]
    authors = [f"{f} {ln}" for f in FIRST for ln in LAST]
    # ~1M images in all: the big dataset holds BIG_IMAGES, the others share the rest.
    per = (N_IMAGES - BIG_IMAGES) / (N_DATASETS - 1)
    for i in range(1, N_DATASETS + 1):
        big = i == 2  # S-NANO2: public, the 100,000-image version
        organism, lines = rng.choice(ORGANISMS)
        cell_line = rng.choice(lines)
        techniques = [_weighted(rng, TECHNIQUES)]
        if rng.random() < 0.1:
            techniques.append(_weighted(rng, [t for t in TECHNIQUES if t[0] != techniques[0]]))
        labels = [
            {"target": t, "fluorophore": rng.choice(FLUOROPHORES)}
            for t, _ in rng.sample(TARGETS, rng.choice((1, 1, 2, 2, 3)))
        ]
        structure = dict(TARGETS)[labels[0]["target"]]
        n_images = BIG_IMAGES if big else max(1, round(rng.uniform(0.5, 1.5) * per))
        license_ = _weighted(rng, LICENSES)
        embargoed = not big and rng.random() < EMBARGOED_SHARE
        owner = "alice" if rng.random() < 0.01 else f"dep{rng.randint(1, 100):03d}"
        title = f"{techniques[0]} of {structure} ({labels[0]['target']}) in {cell_line}"
        extra = " ".join(rng.choices(filler, weights=zipf, k=rng.randint(15, 40)))
        description = (
            f"{' and '.join(techniques)} images of {structure} in {cell_line} {COMMON_WORD} "
            f"({organism}), labelled for "
            + ", ".join(f"{lab['target']} with {lab['fluorophore']}" for lab in labels)
            + f". {extra}."
        )
        instrument = {t: rng.choice(INSTRUMENTS[t]) for t in techniques}
        images = _image_rows(rng, n_images, techniques=techniques, cell_line=cell_line,
                             labels=labels)  # fmt: skip
        record: dict[str, Any] = {
            "schema": "nanorepo-rembi/1",
            "study": {
                "description": description,
                "authors": [{"name": a} for a in rng.sample(authors, rng.randint(1, 4))],
            },
            "biosample": {"organism": organism, "cell_line": cell_line},
            "specimen": {"labels": labels},
            "image_acquisition": {"technique": techniques[0]},
            "image_correlation": None,
            "analysed_data": [],
            "localisation_tables": {},
            "images": {
                im["name"]: {"acquisition": {"technique": im["technique"],
                                             "instrument": instrument[im["technique"]]}}
                for im in images
            },
        }  # fmt: skip
        mutable = {
            "title": title,
            "description": description,
            "keywords": rng.sample(KEYWORDS, rng.randint(1, 4)),
            "license": license_,
        }
        grants: list[tuple[str, str]] = []
        if embargoed:
            r = rng.random()
            if r < 0.4:
                grants.append(("user", "bob"))
            elif r < 0.7:
                grants.append(("group", "lab"))
            else:
                grants.append(("user", f"u{rng.randint(1, 50)}"))
        yield Plan(i, f"S-NANO{i}", owner, "embargoed" if embargoed else "public", title,
                   mutable, record, images, grants)  # fmt: skip


def doc_and_fields(p: Plan) -> tuple[str, list[tuple[str, str, str]]]:
    """What :func:`nanorepo.search.index_dataset` writes for ``p`` (no threads yet)."""
    from nanorepo.search import FIELDS
    from nanorepo.search._index import _strings

    values: dict[str, set[str]] = {f: set() for f in FIELDS}
    values["accession"].add(p.accession)
    values["access"].add(p.access)
    values["license"].add(p.mutable["license"])
    values["keyword"].update(p.mutable["keywords"])
    values["organism"].add(p.record["biosample"]["organism"])
    values["cell_line"].add(p.record["biosample"]["cell_line"])
    values["author"].update(a["name"] for a in p.record["study"]["authors"])
    for lab in p.record["specimen"]["labels"]:
        values["fluorophore"].add(lab["fluorophore"])
        values["target"].add(lab["target"])
    for im in p.images:
        values["technique"].add(im["technique"])
        values["cell_line"].add(im["key_values"]["cell_line"])
    for entry in p.record["images"].values():
        values["technique"].add(entry["acquisition"]["technique"])
        values["instrument"].add(entry["acquisition"]["instrument"])
    record = json.loads(json.dumps(p.record, sort_keys=True))
    parts = [p.accession, p.title, p.mutable["description"], *p.mutable["keywords"]]
    parts += list(_strings({k: v for k, v in record.items() if k != "images"}))
    for im in p.images:
        parts.append(im["name"])
        parts += list(_strings(im["key_values"]))
        parts += [c["name"] for c in im["channels"]]
    for vals in values.values():
        parts += list(vals)
    fields = [
        (f, v.strip().lower()[:255], v.strip()[:255]) for f, vals in values.items() for v in vals
    ]
    return "\n".join(x for x in parts if x), fields


def _settings(home: Path) -> Any:
    from nanorepo.settings import Settings

    return Settings.from_env(home, env={"NANOREPO_USER": "benchmark"})


def build_catalog(out: Console) -> dict[str, Any]:
    """Generate the catalog into :data:`HOME` (bulk inserts); returns what the runs need."""
    from sqlalchemy import insert

    from nanorepo.catalog import Catalog
    from nanorepo.catalog.models import (
        Accession,
        Dataset,
        DatasetField,
        Grant,
        Group,
        Image,
        MutableRevision,
        SearchDoc,
        User,
        Version,
    )
    from nanorepo.storage._digest import sha256_hex

    shutil.rmtree(HOME, ignore_errors=True)
    settings = _settings(HOME)
    out.print(f"[build] generating {N_DATASETS:,} datasets, ~{N_IMAGES:,} images into {HOME}")
    t0 = time.perf_counter()
    cat = Catalog(settings.database_url)
    now = datetime.now(UTC)
    # In foreign-key order: a batch is written only after the batches it refers to.
    models: tuple[Any, ...] = (Accession, Dataset, Version, Image, MutableRevision, SearchDoc,
                               DatasetField, Grant)  # fmt: skip
    tables = {m: m.__table__ for m in models}
    batch: dict[Any, list[dict[str, Any]]] = {m: [] for m in tables}
    counts = dict.fromkeys(tables, 0)
    image_id = 0
    samples: list[Plan] = []

    def flush(conn: Any, force: bool = False) -> None:
        if not force and max(len(rows) for rows in batch.values()) < 50_000:
            return
        for m, rows in batch.items():
            if rows:
                conn.execute(insert(tables[m]), rows)
                counts[m] += len(rows)
                rows.clear()

    rng = random.Random(SEED + 2)
    zero = "0" * 64
    with cat.engine.begin() as conn:
        for p in generate(out):
            if p.id in (1, 2, 500, 5000) or (p.access == "embargoed" and len(samples) < 6):
                samples.append(p)
            batch[Accession].append({"id": p.id, "deposit_key": f"bench-{p.id}", "created": now})
            batch[Dataset].append(
                {"id": p.id, "accession": p.accession, "owner": p.owner, "created": now,
                 "access": p.access,
                 "embargo_until": date(2099, 1, 1) if p.access == "embargoed" else None,
                 "state": "active", "latest_version": 1, "title": p.title,
                 "mutable": p.mutable, "mutable_rev": 1}
            )  # fmt: skip
            for k, v in p.mutable.items():
                batch[MutableRevision].append(
                    {"dataset_id": p.id, "rev": 1, "key": k, "old": None, "new": v,
                     "who": p.owner, "when": now, "reason": "deposited"}
                )  # fmt: skip
            metadata_json = json.dumps(p.record, sort_keys=True, separators=(",", ":"))
            batch[Version].append(
                {"id": p.id, "dataset_id": p.id, "number": 1, "created": now,
                 "created_by": p.owner, "note": "deposited", "metadata_json": metadata_json,
                 "metadata_digest": sha256_hex(metadata_json.encode()),
                 "manifest_digest": f"{rng.getrandbits(256):064x}",
                 "size_bytes": sum(im["size_bytes"] for im in p.images)}
            )  # fmt: skip
            for im in p.images:
                image_id += 1
                n_ch = len(im["channels"])
                batch[Image].append(
                    {"id": image_id, "version_id": p.id, "name": im["name"],
                     "path": f"images/v1/{im['name']}.ome.zarr", "dims": ["c", "z", "y", "x"],
                     "shape": [n_ch, 16, 2048, 2048], "dtype": "uint16",
                     "pixel_sizes": {"z": 100.0, "y": 20.0, "x": 20.0},
                     "channels": im["channels"],
                     "levels": [[n_ch, 16, 2048 >> k, 2048 >> k] for k in range(4)],
                     "key_values": im["key_values"], "technique": im["technique"],
                     "manifest_digest": zero, "size_bytes": im["size_bytes"]}
                )  # fmt: skip
            doc, fields = doc_and_fields(p)
            batch[SearchDoc].append({"dataset_id": p.id, "text": doc})
            batch[DatasetField] += [
                {"dataset_id": p.id, "field": f, "value": v, "display": d} for f, v, d in fields
            ]
            for kind, who in p.grants:
                batch[Grant].append(
                    {"dataset_id": p.id, "principal_kind": kind, "principal": who,
                     "granted_by": p.owner, "created": now}
                )  # fmt: skip
            flush(conn)
            if p.id % 2000 == 0:
                out.print(
                    f"[build] {p.id:,} datasets, {image_id:,} images "
                    f"({time.perf_counter() - t0:.0f} s)"
                )
        flush(conn, force=True)
        conn.execute(insert(User.__table__), [{"name": n, "role": "reader", "created": now}  # type: ignore[attr-defined]
                                              for n in ("bob", "dave", "carol")])  # fmt: skip
        conn.execute(insert(Group.__table__), [{"id": 1, "name": "lab"}])  # type: ignore[attr-defined]
    with cat.session() as s:  # dave joins the group through the catalog's own code
        cat.add_to_group(s, "dave", "lab")
        cat.add_to_group(s, "bob", "lab")
        s.commit()
    seconds = time.perf_counter() - t0
    _check_against_index_dataset(cat, samples, out)
    _check_key_value_rows(cat, out)
    rare = _rare_word(cat)
    cat.close()
    size = sum(p.stat().st_size for p in HOME.glob("catalog.sqlite*"))
    info = {
        "format": CATALOG_FORMAT,
        "datasets": counts[Dataset],
        "images": counts[Image],
        "embargoed": counts[Grant],
        "field_rows": counts[DatasetField],
        "build_seconds": seconds,
        "bytes": size,
        "big": "S-NANO2",
        "rare_word": rare,
        "built": now.isoformat(timespec="seconds"),
    }
    MARKER.write_text(json.dumps(info, indent=1))
    out.print(
        f"[build] done in {seconds:.0f} s: {info['datasets']:,} datasets, "
        f"{info['images']:,} images, {size / C.MB:,.0f} MB"
    )
    return info


def _check_against_index_dataset(cat: Any, samples: list[Plan], out: Console) -> None:
    """The bulk-built rows equal what ``index_dataset`` writes (on a sample, rolled back)."""
    from collections import Counter

    from sqlmodel import col, select

    from nanorepo.catalog.models import DatasetField, SearchDoc
    from nanorepo.search import index_dataset
    from nanorepo.search._index import _SOURCE

    def fields_of(s: Any, dataset_id: int) -> set[tuple[str, str, str]]:
        rows = s.exec(
            select(DatasetField.field, DatasetField.value, DatasetField.display).where(
                col(DatasetField.dataset_id) == dataset_id, DatasetField.field != _SOURCE
            )
        ).all()
        return set(rows)

    for p in samples:
        with cat.session() as s:
            bulk_doc = s.get(SearchDoc, p.id).text
            bulk_fields = fields_of(s, p.id)
            index_dataset(s, p.id)
            s.expire_all()
            doc = s.get(SearchDoc, p.id).text
            fields = fields_of(s, p.id)
            s.rollback()
        if Counter(doc.split("\n")) != Counter(bulk_doc.split("\n")) or fields != bulk_fields:
            raise SystemExit(f"bulk rows of {p.accession} differ from index_dataset's")
    out.print(f"[build] bulk rows equal index_dataset's on {len(samples)} sampled datasets")


def _check_key_value_rows(cat: Any, out: Console) -> None:
    """Every image's key/values are rows of ``image_key_value`` (written by the triggers)."""
    from sqlalchemy import text

    with cat.engine.connect() as conn:
        pairs = conn.execute(
            text("SELECT count(*) FROM image, json_each(image.key_values)")
        ).scalar_one()
        rows = conn.execute(text("SELECT count(*) FROM image_key_value")).scalar_one()
    if rows != pairs:
        raise SystemExit(f"image_key_value has {rows:,} rows for {pairs:,} image key/values")
    out.print(f"[build] image_key_value holds all {rows:,} image key/values")


def _rare_word(cat: Any) -> str:
    """A filler word in 2-5 public datasets (the 'rare word' query)."""
    from sqlalchemy import text

    with cat.engine.connect() as conn:
        conn.execute(text("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, 'search_fts', 'row')"))
        row = conn.execute(
            text(
                "SELECT term FROM temp.v WHERE doc BETWEEN 2 AND 5 AND length(term) >= 8 "
                "AND term GLOB '[a-z]*' ORDER BY term LIMIT 1"
            )
        ).one()
    return str(row[0])


def catalog(out: Console, *, rebuild: bool) -> dict[str, Any]:
    """The cached catalog's description, building it first if needed."""
    if not rebuild and MARKER.exists():
        info: dict[str, Any] = json.loads(MARKER.read_text())
        if info.get("format") == CATALOG_FORMAT and (HOME / "catalog.sqlite").exists():
            return info
    return build_catalog(out)


# -- load -----------------------------------------------------------------------------------

#: A job sends one or more requests with the client it is given and returns their latencies
#: (seconds) and the ``total`` of the first response.
Job = Callable[[Any], tuple[list[float], int | None]]


@dataclass
class Measured:
    """Latencies of every request of one scenario run."""

    latencies: list[float]
    seconds: float
    total: int | None

    def cells(self) -> list[str]:
        ms = [x * 1000 for x in self.latencies]
        p99 = C.percentile(ms, 99)
        return [
            f"{len(ms)}",
            "" if self.total is None else f"{self.total:,}",
            f"{C.percentile(ms, 50):.1f}",
            f"{p99:.1f}",
            f"{sum(ms) / len(ms):.1f}",
            f"{len(ms) / self.seconds:.0f}",
            f"{p99 / GOAL_MS:.2f}",
        ]


COLUMNS = ["requests", "matches", "p50 ms", "p99 ms", "mean ms", "req/s", "p99 / goal"]


def timed_get(client: Any, path: str, params: Any = None) -> tuple[float, dict[str, Any]]:
    """One GET: its latency (seconds, until the body is read) and its JSON body."""
    t0 = time.perf_counter()
    r = client.get(path, params=params)
    seconds = time.perf_counter() - t0
    if r.status_code != 200:
        raise SystemExit(f"GET {path} {params} -> {r.status_code}: {r.text[:300]}")
    body: dict[str, Any] = r.json()
    return seconds, body


def get_job(path: str, params: Any = None) -> Job:
    def job(client: Any) -> tuple[list[float], int | None]:
        seconds, body = timed_get(client, path, params)
        return [seconds], body.get("total") if isinstance(body, dict) else None

    return job


def walk_job(path: str, params: dict[str, Any], pages: int) -> Job:
    """Fetch a page, then follow ``next`` for ``pages - 1`` more."""

    def job(client: Any) -> tuple[list[float], int | None]:
        out: list[float] = []
        p = dict(params)
        total = None
        for _ in range(pages):
            seconds, body = timed_get(client, path, p)
            out.append(seconds)
            total = body["total"] if total is None else total
            if not body.get("next"):
                break
            p["cursor"] = body["next"]
        return out, total

    return job


def run(url: str, headers: dict[str, str], jobs: Sequence[Job], clients: int) -> Measured:
    """Run ``jobs`` on ``clients`` threads (one keep-alive connection each)."""
    import httpx

    lock = threading.Lock()
    todo = iter(jobs)
    latencies: list[float] = []
    totals: list[int | None] = []
    errors: list[BaseException] = []

    def worker() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            job: Job | None
            while True:
                with lock:
                    job = next(todo, None)
                if job is None or errors:
                    return
                try:
                    lat, total = job(client)
                except BaseException as exc:  # reported after the threads end
                    errors.append(exc)
                    return
                with lock:
                    latencies.extend(lat)
                    totals.append(total)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return Measured(latencies, seconds, next((t for t in totals if t is not None), None))


@dataclass(frozen=True)
class Scenario:
    name: str
    make: Callable[[random.Random], Job]  # a fresh job (random deep offsets etc.)
    requests_per_job: int = 1


def scenarios(info: dict[str, Any]) -> tuple[list[Scenario], list[Scenario]]:
    """The search/facet scenarios and the image-table scenarios."""
    from nanorepo.service._http import encode_cursor

    def deep(q: str) -> Callable[[random.Random], Job]:
        return lambda rng: walk_job(
            "/datasets", {"q": q, "cursor": encode_cursor({"o": rng.randrange(5000, 9000)})}, 3
        )

    filters = 'technique:STED organism:"Homo sapiens"'
    search = [
        Scenario("list, no q", lambda _: get_job("/datasets")),
        Scenario(f"q={COMMON_WORD} (every dataset)", lambda _: get_job("/datasets", {"q": COMMON_WORD})),
        Scenario(f"q={MEDIUM_WORD} (~7 %)", lambda _: get_job("/datasets", {"q": MEDIUM_WORD})),
        Scenario(f"q={info['rare_word']} (rare)", lambda _: get_job("/datasets", {"q": info["rare_word"]})),
        Scenario("q=nuclear pore (two words)", lambda _: get_job("/datasets", {"q": "nuclear pore"})),
        Scenario(f"q={filters}", lambda _: get_job("/datasets", {"q": filters})),
        Scenario(f"q={MEDIUM_WORD} {filters}",
                 lambda _: get_job("/datasets", {"q": f"{MEDIUM_WORD} {filters}"})),
        Scenario("facets, no q", lambda _: get_job("/facets")),
        Scenario(f"facets q={COMMON_WORD}", lambda _: get_job("/facets", {"q": COMMON_WORD})),
        Scenario("facets q=technique:STED", lambda _: get_job("/facets", {"q": "technique:STED"})),
        Scenario(f"facets q={MEDIUM_WORD} {filters}",
                 lambda _: get_job("/facets", {"q": f"{MEDIUM_WORD} {filters}"})),
        Scenario("deep pages, no q (offset 5,000-9,000, +2 next)", deep(""), 3),
        Scenario(f"deep pages q={COMMON_WORD} (offset 5,000-9,000, +2 next)", deep(COMMON_WORD), 3),
    ]  # fmt: skip
    images = f"/datasets/{info['big']}/versions/v1/images"
    table = [
        Scenario("images, first page (sort=name)", lambda _: get_job(images)),
        Scenario("images filter=condition:control sort=well",
                 lambda _: get_job(images, {"filter": "condition:control", "sort": "well"})),
        Scenario("images 2 filters sort=field desc",
                 lambda _: get_job(images, {"filter": ["condition:taxol", "plate:P3"],
                                            "sort": "field", "order": "desc"})),
        Scenario("images filter=condition:DMSO sort=well, 5 pages",
                 lambda _: walk_job(images, {"filter": "condition:DMSO", "sort": "well"}, 5), 5),
        Scenario("images sort=name, 5 pages", lambda _: walk_job(images, {}, 5), 5),
    ]  # fmt: skip
    return search, table


def tokens(settings: Any) -> dict[str, str]:
    """Fresh API tokens for the benchmark users (only their hashes are stored)."""
    from nanorepo.catalog import Catalog
    from nanorepo.policy import Role, create_token

    cat = Catalog(settings.database_url)
    try:
        with cat.session() as s:
            out = {"bob": create_token(s, "bob", role=Role.reader, note="bench_search")}
            s.commit()
        return out
    finally:
        cat.close()


def measure(
    url: str, users: dict[str, dict[str, str]], scs: Sequence[Scenario], requests: int,
    out: Console,
) -> list[list[str]]:  # fmt: skip
    """Rows of the latency table: every scenario, as every user, with 1 and 8 clients."""
    rows: list[list[str]] = []
    rng = random.Random(SEED + 3)
    for sc in scs:
        for user, headers in users.items():
            run(url, headers, [sc.make(rng) for _ in range(3)], 1)  # warm-up
            for clients in (1, 8):
                n_jobs = max(clients, requests // sc.requests_per_job)
                m = run(url, headers, [sc.make(rng) for _ in range(n_jobs)], clients)
                rows.append([sc.name, user, str(clients), *m.cells()])
                out.print(f"  {sc.name} | {user} | {clients} clients: "
                          + " ".join(f"{c}={v}" for c, v in zip(COLUMNS, m.cells(), strict=True)))  # fmt: skip
    return rows


# -- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="build the catalog again")
    parser.add_argument(
        "--requests", type=int, default=200, help="requests per scenario, user and client count"
    )
    parser.add_argument("--only", choices=("search", "images"), help="run one part only")
    args = parser.parse_args(argv)
    C.quiet_warnings()
    out = Console(width=None if sys.stdout.isatty() else 200, highlight=False, soft_wrap=True,
                  markup=False)  # fmt: skip
    C.header(out, "nanorepo search benchmark", WHAT)
    info = catalog(out, rebuild=args.rebuild)
    out.print(
        f"- catalog: {info['datasets']:,} datasets ({info['embargoed']} embargoed), "
        f"{info['images']:,} images, {info['field_rows']:,} field values, "
        f"{info['bytes'] / C.MB:,.0f} MB SQLite; built in {info['build_seconds']:.0f} s "
        f"({info['built']})"
    )
    from nanorepo.repository import Repository
    from nanorepo.testing._service import live_service

    settings = _settings(HOME)
    users = {
        "anonymous": {},
        "bob (~350 grants)": {"Authorization": f"token {tokens(settings)['bob']}"},
    }
    search_sc, image_sc = scenarios(info)
    rows: dict[str, list[list[str]]] = {}
    with live_service(settings, repo=Repository(settings, create=True), process=True) as live:
        out.print(f"- service: {live.url} (uvicorn in its own process)\n")
        if args.only != "images":
            rows["search"] = measure(live.url, users, search_sc, args.requests, out)
        if args.only != "search":
            rows["images"] = measure(live.url, {"anonymous": {}}, image_sc, args.requests, out)
    out.print("")
    for part, title in (("search", "Search and facets"),
                        ("images", f"Image table of {info['big']}@v1 ({BIG_IMAGES:,} images)")):  # fmt: skip
        if part in rows:
            out.print(C.table(f"{title}: latency (goal p99 < {GOAL_MS:.0f} ms)",
                              ["request", "caller", "clients", *COLUMNS], rows[part],
                              text_columns=2))  # fmt: skip
            out.print("")
    for clients in ("1", "8"):
        mine = [r for part in rows.values() for r in part if r[2] == clients]
        if not mine:
            continue
        missed = [r for r in mine if float(r[6]) >= GOAL_MS]
        worst = max(mine, key=lambda r: float(r[6]))
        out.print(
            f"{clients} client(s): p99 < {GOAL_MS:.0f} ms in {len(mine) - len(missed)} of "
            f"{len(mine)} rows; worst {worst[6]} ms ({worst[0]}, {worst[1]})"
        )


if __name__ == "__main__":
    main()
