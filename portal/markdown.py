"""Publishers' Markdown (service descriptions, changelogs) turned into HTML that is safe to show.

Markdown passes raw HTML through, so the result is sanitised with nh3 (an allow-list of tags and
attributes; scripts, event handlers and javascript: links are removed). Headings start at h2:
the page's own title is its only h1.
"""

from __future__ import annotations

import markdown as markdown_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

_TAGS = {
    "p", "br", "hr", "a", "strong", "em", "b", "i", "code", "pre", "kbd", "blockquote", "del", "ins", "sub", "sup",
    "ul", "ol", "li", "dl", "dt", "dd", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "caption", "img", "abbr",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
    "ol": {"start"},
    "abbr": {"title"},
}
_URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str) -> SafeString:
    html = markdown_lib.markdown(text or "", extensions=["extra", "sane_lists"], output_format="html")
    # A heading of level n becomes n+1, so "# Title" in a description is an h2 under the page's h1.
    for level in range(6, 0, -1):
        html = html.replace(f"<h{level}", f"<h{min(level + 1, 6)}").replace(f"</h{level}>", f"</h{min(level + 1, 6)}>")
    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        clean_content_tags={"script", "style"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 - sanitised by nh3 just above
