"""User-written text: Markdown rendered to sanitised HTML, and plain-text fields.

Why these libraries
-------------------
* **markdown-it-py** renders: it follows the CommonMark specification (the same grammar
  JupyterLab, GitHub and napari hub users already write), is maintained by the
  Executable Books project, and lets raw HTML be switched off at the parser, so ``<script>``
  in a post is text, never markup.
* **nh3** sanitises what the renderer produced: it binds *ammonia*, the maintained Rust
  HTML sanitiser that parses with html5ever (the browser parsing algorithm, so mutation
  XSS through mis-nested markup is parsed the way a browser would) and keeps only an
  **explicit allowlist** of tags, attributes and URL schemes. Sanitising the rendered HTML
  rather than trusting the renderer means a renderer bug or plugin cannot open a hole.

The allowlist holds the elements Markdown produces and nothing else: no ``svg``, ``math``,
``style``, ``script``, ``iframe``, ``object``, ``embed``, ``form``, ``input``,
``textarea``, ``noscript``, ``template``, ``meta`` or ``base``; no event handler, no
``style`` or ``class`` (except ``language-*`` on ``code`` for highlighting); links only to
absolute ``http``, ``https`` and ``mailto`` URLs, marked ``nofollow noopener noreferrer
ugc``. Images are off by default (a remote image is a tracking pixel that reveals who read
a post); when allowed, only ``https`` sources are kept.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import re
import threading
import time
import unicodedata
from collections.abc import Sequence
from functools import cache
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from nanorepo.errors import Busy, InvalidInput

__all__ = [
    "MAX_BODY_CHARS",
    "RENDER_BUDGET_S",
    "RenderPool",
    "plain_text",
    "render_markdown",
    "use_render_pool",
]

#: Longest post body accepted, in characters (a long methods note fits; a pasted table does not).
MAX_BODY_CHARS = 100_000
#: Most seconds one post may take to render (in a :class:`RenderPool`). Ordinary text of
#: :data:`MAX_BODY_CHARS` renders in about 0.5 s; the costliest patterns (``![`` repeated)
#: run about 35 µs a character, so only hostile text reaches the budget (the worst of
#: 100,000 characters, 1.3 s on a quiet machine, is cut off at 1 s).
RENDER_BUDGET_S = 1.0
#: Bodies up to this many characters render in the calling thread (at most ~10 ms even for
#: the costliest patterns); longer ones go to the pool, when one is in use.
_INLINE_CHARS = 256

_TAGS = frozenset(
    {
        "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
        "hr", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead",
        "tr", "ul",
    }
)  # fmt: skip
_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "code": {"class"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
}
_SCHEMES = frozenset({"http", "https", "mailto"})
_LINK_REL = "nofollow noopener noreferrer ugc"
_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.-]{1,32}")
_DIGITS = re.compile(r"[0-9]{1,9}")
# Bidirectional overrides and isolates: they make a title read differently from its bytes.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _keep_attribute(tag: str, attr: str, value: str) -> str | None:
    """nh3 attribute filter: narrow the allowlisted attributes to safe values."""
    if tag == "code" and attr == "class":
        return value if _LANGUAGE_CLASS.fullmatch(value) else None
    if tag == "img" and attr == "src":
        return value if value.lower().startswith("https://") else None
    if tag == "ol" and attr == "start":
        return value if _DIGITS.fullmatch(value) else None
    return value


def _image_as_link(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """Render ``![alt](src)`` as a link to the image, so no remote request happens on view."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env) or "image"
    src = escapeHtml(str(token.attrGet("src") or ""))
    return f'<a href="{src}">{escapeHtml(alt)}</a>'


@cache
def _renderer(allow_remote_images: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    if not allow_remote_images:
        md.add_render_rule("image", _image_as_link)
    return md


def render_markdown(text: str, *, allow_remote_images: bool = False) -> str:
    """Render a post's Markdown to HTML that is safe to put into a page.

    Parameters
    ----------
    text:
        The author's Markdown, as written (CommonMark plus tables and strikethrough). Raw
        HTML in it is shown as text, not interpreted.
    allow_remote_images:
        Keep ``![alt](https://...)`` as ``<img>``; otherwise images become links, so that
        reading a post never makes the reader's browser contact a third party.

    Returns
    -------
    str
        HTML holding only allowlisted elements and attributes (see the module docstring).

    Raises
    ------
    InvalidInput
        If ``text`` is not a string or longer than :data:`MAX_BODY_CHARS`, or (in a
        :class:`RenderPool`) takes longer than its budget to render.
    """
    if not isinstance(text, str):
        raise InvalidInput(
            f"a post body must be text, not {type(text).__name__}",
            hint="send the Markdown as a JSON string",
        )
    if len(text) > MAX_BODY_CHARS:
        raise InvalidInput(
            f"the post has {len(text):,} characters; at most {MAX_BODY_CHARS:,} are accepted",
            hint="shorten it, or attach long material as a file of a dataset version and link it",
        )
    pool = _POOL
    if pool is not None and len(text) > _INLINE_CHARS:
        return pool.render(text, allow_remote_images)
    return _render(text, allow_remote_images)


def _render(text: str, allow_remote_images: bool) -> str:
    html = _renderer(allow_remote_images).render(text.replace("\x00", "\ufffd"))
    return _sanitise(html, allow_remote_images=allow_remote_images)


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the worker process
    """The worker's loop: render what arrives, at low CPU priority, until the pipe closes."""
    with contextlib.suppress(OSError):
        os.nice(10)  # the service's own requests come first
    while True:
        try:
            text, allow = conn.recv()
        except EOFError:
            return
        conn.send(_render(text, allow))


class _Worker:
    """One rendering process and the pipe to it."""

    def __init__(self, ctx: ForkServerContext) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="nanorepo-md")
        self.proc.start()
        child.close()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class RenderPool:
    """Worker processes that render Markdown within a time budget.

    Rendering is pure Python: in the service's own process a long hostile post would hold
    the interpreter lock and delay every other request. Here each render runs in a worker
    process at low CPU priority; a render that exceeds ``budget_s`` of CPU time has its
    worker killed (and replaced) and fails with :class:`InvalidInput`, so one post can cost
    at most ``budget_s`` of CPU. Callers that find every worker busy wait up to ``wait_s``.

    Parameters
    ----------
    workers:
        How many renders may run at once (default: the number of CPUs, at most 4).
    budget_s, wait_s:
        Seconds of CPU a render may take; seconds a caller waits for a free worker.
    """

    def __init__(
        self, workers: int | None = None, *, budget_s: float = RENDER_BUDGET_S, wait_s: float = 30.0
    ) -> None:
        self.budget_s = budget_s
        self.wait_s = wait_s
        self._ctx = multiprocessing.get_context("forkserver")
        # workers fork from a server that imported this module once: cheap to replace
        self._ctx.set_forkserver_preload([__name__])
        n = workers or min(4, os.cpu_count() or 1)
        self._free: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(n):
            self._free.put(None)  # started on first use
        self._all: list[_Worker] = []
        self._lock = threading.Lock()

    def render(self, text: str, allow_remote_images: bool = False) -> str:
        """Rendered and sanitised HTML of ``text`` (see :func:`render_markdown`)."""
        try:
            worker = self._free.get(timeout=self.wait_s)
        except queue.Empty:
            raise Busy(
                "the service is rendering too many posts at once",
                hint="try again in a moment",
            ) from None
        try:
            if worker is None or not worker.proc.is_alive():
                worker = self._start()
            worker.conn.send((text, allow_remote_images))
            if not self._wait(worker):
                self._retire(worker)
                worker = None
                raise InvalidInput(
                    f"the post ({len(text):,} characters) takes more than {self.budget_s:g} s "
                    "to render",
                    hint="shorten it or simplify its Markdown (long runs of brackets or "
                    "emphasis markers are what makes text slow to render)",
                )
            html: str = worker.conn.recv()
            return html
        except (EOFError, OSError, BrokenPipeError):
            if worker is not None:
                self._retire(worker)
            worker = None
            raise
        finally:
            self._free.put(worker)

    def _wait(self, worker: _Worker) -> bool:
        """Wait for the worker's answer; ``False`` once the render has used its budget of
        CPU time (read from ``/proc``; where that is missing, of wall time), or five
        budgets of wall time when the machine starves the worker of CPU. CPU time, not
        wall time: on a busy machine the low-priority worker waits for a core, and an
        ordinary long post must not be refused for that."""
        pid = worker.proc.pid or 0
        start_cpu, start = _cpu_seconds(pid), time.monotonic()
        step = min(0.05, self.budget_s)
        while not worker.conn.poll(step):
            now = time.monotonic()
            cpu = _cpu_seconds(pid)
            used = cpu - start_cpu if cpu is not None and start_cpu is not None else now - start
            if used > self.budget_s or now - start > 5 * self.budget_s:
                return False
        return True

    def _start(self) -> _Worker:
        w = _Worker(self._ctx)
        with self._lock:
            self._all.append(w)
        return w

    def _retire(self, worker: _Worker) -> None:
        worker.stop()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)

    def close(self) -> None:
        """Stop every worker."""
        with self._lock:
            workers, self._all = self._all, []
        for w in workers:
            w.stop()


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) process ``pid`` has used, from Linux's ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # after the command name
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

_POOL: RenderPool | None = None


def use_render_pool(pool: RenderPool | None, *, instead_of: RenderPool | None = None) -> None:
    """Render longer posts of this process in ``pool`` from now on (``None``: in the
    calling thread again). The service installs one for its lifetime; the CLI renders
    in-process.

    With ``instead_of``, the change happens only while that pool is the one in use: a
    service stopping late (several services in one process, as in tests) never removes
    the pool of a service that started after it.
    """
    global _POOL
    with _SWAP:
        if instead_of is None or _POOL is instead_of:
            _POOL = pool


_SWAP = threading.Lock()


def _sanitise(html: str, *, allow_remote_images: bool = False) -> str:
    """Keep only the allowlisted HTML (the second line of defence, tested on its own)."""
    tags = set(_TAGS) | ({"img"} if allow_remote_images else set())
    attributes = {k: set(v) for k, v in _ATTRIBUTES.items() if k in tags}
    return nh3.clean(
        html,
        tags=tags,
        clean_content_tags={"script", "style"},
        attributes=attributes,
        attribute_filter=_keep_attribute,
        strip_comments=True,
        link_rel=_LINK_REL,
        url_schemes=set(_SCHEMES),
        url_relative="deny",
    )


def plain_text(value: Any, what: str, max_len: int) -> str:
    """Normalise a one-line text field (thread title, tag) and check its length.

    Control characters and bidirectional overrides are removed, runs of white space become
    one space and the ends are trimmed. The result is plain text: whoever shows it puts it
    into a text node (never into HTML), so no markup can come from it.

    Parameters
    ----------
    value:
        What the user sent.
    what:
        Name of the field, for the error message (``"title"``, ``"tag"``).
    max_len:
        Longest accepted length in characters, after normalisation.

    Raises
    ------
    InvalidInput
        If ``value`` is not a string, is empty after normalisation, or is too long.
    """
    if not isinstance(value, str):
        raise InvalidInput(
            f"{what} must be text, not {type(value).__name__}", hint=f"send the {what} as a string"
        )
    kept = []
    for ch in unicodedata.normalize("NFC", value):
        if ch.isspace():
            kept.append(" ")
        elif unicodedata.category(ch) != "Cc" and ch not in _BIDI:
            kept.append(ch)
    clean = " ".join("".join(kept).split())
    if not clean:
        raise InvalidInput(f"{what} is empty", hint=f"write a {what} of 1 to {max_len} characters")
    if len(clean) > max_len:
        raise InvalidInput(
            f"{what} has {len(clean)} characters; at most {max_len} are accepted",
            hint=f"shorten the {what}",
        )
    return clean
