"""Annotation threads: discussions anchored to a dataset, an image, or a region of an image.

Scientists discuss a dataset for years in threads. A thread is anchored in physical units
(:func:`normalise_anchor`), holds Markdown posts rendered to sanitised HTML
(:func:`render_markdown`), keeps every edit and state change (nothing is lost), and can
be exported to and imported from W3C Web Annotation JSON-LD (:func:`export_collection`,
:func:`import_collection`).

The functions act on a caller's SQLModel session and never commit or check permissions:
the service does both. After a write the caller re-indexes the dataset
(:func:`nanorepo.search.index_dataset`) so thread text is searchable.
"""

from __future__ import annotations

from nanorepo.annotations._anchor import (
    ANCHOR_KINDS,
    MAX_POLYGON_POINTS,
    normalise_anchor,
    region_to_pixels,
)
from nanorepo.annotations._markdown import (
    MAX_BODY_CHARS,
    RENDER_BUDGET_S,
    RenderPool,
    plain_text,
    render_markdown,
    use_render_pool,
)
from nanorepo.annotations._posts import (
    PostNotFound,
    delete_post,
    edit_post,
    get_post,
    post_history,
    posts,
    reply,
)
from nanorepo.annotations._threads import (
    MAX_TAGS,
    MOTIVATIONS,
    STATUSES,
    EditConflict,
    ThreadNotFound,
    create_thread,
    delete_thread,
    get_thread,
    list_threads,
    retitle,
    set_status,
    set_tags,
    thread_counts,
    thread_events,
)
from nanorepo.annotations._webannotation import (
    ANNO_CONTEXT,
    MAX_IMPORT_ITEMS,
    NANOREPO_NS,
    export_collection,
    import_collection,
)

__all__ = [
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
