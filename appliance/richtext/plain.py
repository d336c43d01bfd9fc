"""Plain text that Markdown, Jira wiki markup and ADF all spell the same way: the converters' fast path.

Most comments a sync moves are a sentence or two with no markup ("Comment 0 on item 7"); parsing and
rendering them costs far more than the text is worth.  `is_plain` accepts a text only when every
converter provably gives it back unchanged, so skipping them changes no output: paragraphs (separated
by exactly one blank line) of ASCII letters, digits, single spaces and the punctuation below, starting
with a letter or digit and ending without a space; a "-" only between two letters/digits (elsewhere it
may be a wiki strike or a list bullet); no "??" (wiki citation); no paragraph that starts like an
ordered list ("1.", "2)") or a wiki heading or quote ("h1.", "bq.").  Everything else takes the full
path; the unit tests check that both paths agree on texts made of these characters and their
neighbours.
"""

from __future__ import annotations

import re
from typing import Any

_CHAR = r"[A-Za-z0-9 ,.;:'\"/%()?]|(?<=[A-Za-z0-9])-(?=[A-Za-z0-9])"
_PARAGRAPH = (
    r"(?![0-9]+[.)]|h[1-6]\.|bq\.)[A-Za-z0-9]"
    r"(?:(?:" + _CHAR + r")*[A-Za-z0-9,.;:'\"/%()?])?"
)
_PLAIN = re.compile(r"(?!.*\?\?)" + _PARAGRAPH + r"(?:\n\n" + _PARAGRAPH + r")*\Z", re.S)


def is_plain(text: str) -> bool:
    """Whether `text` reads as the same plain paragraphs in Markdown and wiki markup, and converts to itself."""
    return isinstance(text, str) and _PLAIN.match(text) is not None


def to_adf(text: str) -> dict[str, Any]:
    """The ADF document for plain `text` (`is_plain` must hold): one paragraph per paragraph."""
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in text.split("\n\n")],
    }


def from_adf(doc: Any) -> str | None:
    """The plain text of an ADF document made only of paragraphs of unmarked text, when `is_plain` holds
    for it; None for anything else (the caller then takes the full path)."""
    if not isinstance(doc, dict):
        return None
    content = doc.get("content")
    if not isinstance(content, list) or not content:
        return None
    paragraphs = []
    for node in content:
        if not isinstance(node, dict) or node.get("type") != "paragraph":
            return None
        inner = node.get("content")
        if not isinstance(inner, list) or not inner:
            return None
        parts = []
        for leaf in inner:
            if not isinstance(leaf, dict) or leaf.get("type") != "text" or leaf.get("marks"):
                return None
            s = leaf.get("text")
            if not isinstance(s, str):
                return None
            parts.append(s)
        paragraph = "".join(parts)
        # A newline inside a text node is a space to the full path, not a paragraph break.
        if "\n" in paragraph or not is_plain(paragraph):
            return None
        paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)
