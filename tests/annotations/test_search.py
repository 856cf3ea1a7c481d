"""Annotation text is searchable; deleted threads drop out of the results."""

from __future__ import annotations

import nanorepo.annotations as an
from nanorepo.search import index_dataset, search
from tests.annotations.conftest import Published, publish


def accessions(pub: Published, q: str) -> list[str]:
    with pub.catalog.session() as s:
        hits, total = search(s, q)
    assert total == len(hits)
    return [d.accession for d in hits]


def test_post_words_are_found_until_the_thread_is_deleted(published: Published) -> None:
    publish(published.catalog, "S-NANO2", title="Microtubules")
    cat, ds = published.catalog, published.dataset
    assert accessions(published, "heptagonal") == []
    with cat.session() as s:
        t = an.create_thread(
            s, ds, version=1, image_row=None, anchor={"kind": "dataset"},
            title="Symmetry outliers", body="Some pores look *heptagonal*.", tags=["eightfold"],
            who="alice",
        )  # fmt: skip
        r = an.reply(s, t, body="Probably a segmentation artefact.", who="bob")
        index_dataset(s, ds.id)
        s.commit()
    for word in ["heptagonal", "outliers", "eightfold", "artefact", "heptagonal pores"]:
        assert accessions(published, word) == ["S-NANO1"], word
    with cat.session() as s:
        an.edit_post(s, r, body="A labelling gap.", who="bob", expected_rev=1)
        index_dataset(s, ds.id)
        s.commit()
    assert accessions(published, "artefact") == []  # only the current text is indexed
    assert accessions(published, "labelling") == ["S-NANO1"]
    with cat.session() as s:
        an.delete_thread(s, an.get_thread(s, ds.id, t.id), "curator")
        index_dataset(s, ds.id)
        s.commit()
    for word in ["heptagonal", "outliers", "eightfold", "labelling"]:
        assert accessions(published, word) == [], word
    assert accessions(published, "Nuclear pores") == ["S-NANO1"]  # the dataset itself stays
