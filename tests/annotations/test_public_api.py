"""The public names of nanorepo.annotations: a change here is an API change, made on purpose.

(tests/test_public_api.py lists the other subpackages; this one is checked here until it
is added there.)
"""

from __future__ import annotations

import nanorepo.annotations as an

PUBLIC = [
    "ANCHOR_KINDS",
    "ANNO_CONTEXT",
    "MAX_BODY_CHARS",
    "MAX_IMPORT_ITEMS",
    "MAX_POLYGON_POINTS",
    "MAX_TAGS",
    "MOTIVATIONS",
    "NANOREPO_NS",
    "RENDER_BUDGET_S",
    "STATUSES",
    "EditConflict",
    "PostNotFound",
    "RenderPool",
    "ThreadNotFound",
    "create_thread",
    "delete_post",
    "delete_thread",
    "edit_post",
    "export_collection",
    "get_post",
    "get_thread",
    "import_collection",
    "list_threads",
    "normalise_anchor",
    "plain_text",
    "post_history",
    "posts",
    "region_to_pixels",
    "render_markdown",
    "reply",
    "retitle",
    "set_status",
    "set_tags",
    "thread_counts",
    "thread_events",
    "use_render_pool",
]


def test_public_names_do_not_drift() -> None:
    assert list(an.__all__) == PUBLIC
    for name in an.__all__:
        assert hasattr(an, name), name


def test_errors_belong_to_the_one_tree() -> None:
    from nanorepo.errors import Conflict, NanorepoError

    assert issubclass(an.ThreadNotFound, NanorepoError) and issubclass(
        an.ThreadNotFound, LookupError
    )
    assert issubclass(an.PostNotFound, NanorepoError) and issubclass(an.PostNotFound, LookupError)
    assert issubclass(an.EditConflict, Conflict)
