"""The canonical rich-text form: a CommonMark + GFM subset, and the document model every converter shares.

Every rich-text value the sync engine stores is Markdown in the canonical form produced by `normalise`.
The converters (jira_wiki.py, adf.py) never translate text to text: they parse into the small document
model of model.py and render out of it, and every parser ends in `canonical_blocks`, which reduces any
document to what all three formats can express.  That is what makes the round trips exact: for canonical
Markdown ``n``, ``from_X(to_X(n)) == n`` (less its HTML comments, see below).  Parsing is
markdown-it-py's (CommonMark, plus its GFM table and strikethrough rules; raw HTML off, so it stays
literal text, but for HTML comments); rendering is ours, escaping exactly what would otherwise read as
markup so that escapes never accumulate.

The subset: paragraphs, headings 1-6, emphasis, strong, strikethrough, inline code, fenced code blocks
with a language, bullet and ordered lists (nested; a list item holds one paragraph and nested lists),
task list items (GitLab's ``- [ ]`` / ``- [x]``, also in ordered and nested lists), links (inline and
autolinks), blockquotes (holding paragraphs, lists and code blocks), horizontal rules, hard line breaks,
GFM tables (inline content only) and mentions (``@login``).

HTML comments (``<!-- ... -->``, on lines of their own or inline) are kept as written: GitLab keeps
them unshown, so a description read from GitLab comes back unchanged.  Jira has nothing like them:
to_jira_wiki and to_adf leave them out (comments.py), so they do not come back from Jira.

What the canonical form gives up, so that Jira wiki markup and ADF can carry it (it degrades to readable
text, nothing is dropped silently): soft line breaks become spaces; ordered lists restart at 1; list
items keep one paragraph (further blocks are appended to it after hard breaks, code lines as inline
code); headings inside a blockquote become strong paragraphs and nested blockquotes are merged into
the outer one; tables inside a blockquote become one paragraph per row with cells joined by " | ";
bold/italic/strikethrough on inline code are dropped (ADF forbids combining them with code); images
become links to the image; raw HTML is kept as literal text; link titles and table alignment are
dropped; code block languages are kept only when they are a plain word (``c++``, ``objective-c``);
a horizontal rule inside a blockquote is dropped (it carries no text); "@name" inside link text stays
text; a mention that touches a word character (from ADF or wiki) gets a space before/after it; a mark
that Markdown's flanking rules cannot place (bold right after a letter and starting with punctuation,
only possible from ADF or wiki) reads back as its literal, escaped delimiters; a list item whose text
opens with a literal (escaped) "[ ] " or "[x] " is a task item (ADF cannot tell the two apart); an
HTML comment that opens a line of a paragraph or list item moves to the end of the line (GitLab
would read the line as raw HTML), one on a line of its own in a list item joins the item's text, one
inside a paragraph is kept on one line; a comment inside a link or mark splits it.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from .model import (
    EM,
    MENTION_RE,
    STRIKE,
    STRONG,
    Block,
    CodeBlock,
    Comment,
    Heading,
    Inline,
    ListBlock,
    ListItem,
    Paragraph,
    Quote,
    Rule,
    Table,
    canonical_blocks,
    checkbox,
    is_word,
    item_from_blocks,
    link_normaliser,
    mark_events,
    tail_is_word,
)

# ---------------------------------------------------------------------------------------------------
# Markdown -> model (markdown-it-py's token stream).

_parser = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    .enable(["table", "strikethrough"])
    # Keep escapes as separate tokens: "\@alice" is text, "@alice" is a mention.
    .disable("text_join")
    # With html off these never match: skipping them saves a call per line and per "<".
    .disable(["html_block", "html_inline"])
)


def _comment_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """markdown-it block rule: an HTML comment on lines of its own, as an ``html_block`` token.

    CommonMark's HTML block of type 2 (markdown-it's `html_block` reads every type, or none): it
    starts with a line opening with ``<!--`` and ends with the line holding the first ``-->``.
    Text after the ``-->`` would be raw HTML to GitLab; here the lines are left to the paragraph
    rule instead, which reads the comment inline (see `_comment_inline`).
    """
    pos = state.bMarks[start] + state.tShift[start]
    if state.is_code_block(start) or not state.src.startswith("<!--", pos):
        return False
    if silent:  # like any HTML block, a comment ends a paragraph
        return True
    if "comment_close_last" not in state.env:  # so that many unclosed "<!--" lines stay linear
        state.env["comment_close_last"] = state.src.rfind("-->")
    if state.env["comment_close_last"] < pos + 2:
        return False
    line, search = start, pos + 2  # "<!-->" is a whole comment
    while line < end:
        if line > start:
            if state.sCount[line] < state.blkIndent and not state.isEmpty(line):
                return False  # the list item or quote ends first: no comment
            search = state.bMarks[line]
        close = state.src.find("-->", search, state.eMarks[line])
        if close >= 0:
            if state.src[close + 3 : state.eMarks[line]].strip():
                return False
            break
        line += 1
    else:
        return False  # never closed: text, like other raw HTML
    token = state.push("html_block", "", 0)
    token.map = [start, line + 1]
    token.content = state.getLines(start, line + 1, state.blkIndent, False)
    state.line = line + 1
    return True


def _comment_inline(state: StateInline, silent: bool) -> bool:
    """markdown-it inline rule: an HTML comment inside a paragraph, as an ``html_inline`` token."""
    pos = state.pos
    if not state.src.startswith("<!--", pos) or state.html_terminator_last("-->") < pos + 2:
        return False  # the second test, constant time, keeps many unclosed "<!--" linear
    close = state.src.find("-->", pos + 2, state.posMax)
    if close < 0:
        return False
    if not silent:
        state.push("html_inline", "", 0).content = state.src[pos : close + 3]
    state.pos = close + 3
    return True


_parser.block.ruler.before(
    "html_block", "comment_block", _comment_block, {"alt": ["paragraph", "reference", "blockquote"]}
)
_parser.inline.ruler.before("html_inline", "comment_inline", _comment_inline)


def parse(md: str) -> tuple[Block, ...]:
    """Parse Markdown (CommonMark + GFM tables/strikethrough) into canonical blocks."""
    tokens = _parser.parse(md or "")
    blocks, _ = _blocks(tokens, 0, None)
    return canonical_blocks(blocks)


def _blocks(tokens: list[Token], i: int, until: str | None) -> tuple[list[Block], int]:
    out: list[Block] = []
    while i < len(tokens):
        tok = tokens[i]
        if until is not None and tok.type == until:
            return out, i + 1
        t = tok.type
        if t == "paragraph_open":
            out.append(Paragraph(tuple(_inlines(tokens[i + 1].children or []))))
            i += 3
        elif t == "heading_open":
            out.append(Heading(int(tok.tag[1]), tuple(_inlines(tokens[i + 1].children or []))))
            i += 3
        elif t in ("fence", "code_block"):
            body = tok.content[:-1] if tok.content.endswith("\n") else tok.content
            out.append(CodeBlock(tok.info if t == "fence" else "", body))
            i += 1
        elif t in ("bullet_list_open", "ordered_list_open"):
            items: list[ListItem] = []
            close = t.replace("_open", "_close")
            i += 1
            while tokens[i].type != close:
                inner, i = _blocks(tokens, i + 1, "list_item_close")
                items.append(item_from_blocks(inner))
            out.append(ListBlock(t == "ordered_list_open", tuple(items)))
            i += 1
        elif t == "blockquote_open":
            inner, i = _blocks(tokens, i + 1, "blockquote_close")
            out.append(Quote(tuple(inner)))
        elif t == "hr":
            out.append(Rule())
            i += 1
        elif t == "html_block":  # only comments (`_comment_block`)
            out.append(Comment(tok.content))
            i += 1
        elif t == "table_open":
            rows: list[tuple[tuple[Inline, ...], ...]] = []
            row: list[tuple[Inline, ...]] = []
            while tokens[i].type != "table_close":
                tt = tokens[i].type
                if tt == "tr_open":
                    row = []
                elif tt == "inline":
                    row.append(tuple(_inlines(tokens[i].children or [])))
                elif tt == "tr_close":
                    rows.append(tuple(row))
                i += 1
            out.append(Table(tuple(rows)))
            i += 1
        else:
            i += 1
    return out, i


def _inlines(children: list[Token]) -> list[Inline]:
    out: list[Inline] = []
    marks: list[str] = []
    links: list[str] = []
    starts: list[int] = []
    for tok in children:
        t = tok.type
        href = links[-1] if links else None
        if t == "text":
            _text_with_mentions(out, tok.content, frozenset(marks), href)
        elif t == "text_special":
            out.append(Inline("text", tok.content, frozenset(marks), href))
        elif t == "softbreak":
            out.append(Inline("text", " ", frozenset(marks), href))
        elif t == "hardbreak":
            out.append(Inline("br"))
        elif t == "code_inline":
            out.append(Inline("code", tok.content, frozenset(), href))
        elif t in ("em_open", "strong_open", "s_open"):
            marks.append({"em_open": EM, "strong_open": STRONG, "s_open": STRIKE}[t])
        elif t in ("em_close", "strong_close", "s_close"):
            mark = {"em_close": EM, "strong_close": STRONG, "s_close": STRIKE}[t]
            if mark in marks:
                marks.remove(mark)
        elif t == "link_open":
            links.append(str(tok.attrs.get("href", "")))
            starts.append(len(out))
        elif t == "link_close":
            if links:
                target = links.pop()
                if starts.pop() == len(out):  # "[](url)": keep the target readable
                    out.append(Inline("text", target, frozenset(marks), target))
        elif t == "image":
            alt = "".join(c.content for c in (tok.children or []) if c.type in ("text", "text_special"))
            src = str(tok.attrs.get("src", ""))
            out.append(Inline("text", alt or src, frozenset(marks), href or src))
        elif t == "html_inline":  # only comments (`_comment_inline`)
            out.append(Inline("comment", tok.content))
        else:  # anything else degrades to its source text
            if tok.content:
                out.append(Inline("text", tok.content, frozenset(marks), href))
    return out


def _text_with_mentions(out: list[Inline], s: str, marks: frozenset[str], href: str | None) -> None:
    if href is not None:  # a mention cannot sit inside a link (ADF and wiki cannot express it)
        out.append(Inline("text", s, marks, href))
        return
    pos = 0
    for m in MENTION_RE.finditer(s):
        before = s[m.start() - 1] if m.start() > 0 else None
        if before is not None and is_word(before):
            continue
        if before is None and m.start() == pos and tail_is_word(out[-1] if out else None):
            continue
        if m.start() > pos:
            out.append(Inline("text", s[pos : m.start()], marks, href))
        out.append(Inline("mention", m.group(1)))
        pos = m.end()
    if pos < len(s):
        out.append(Inline("text", s[pos:], marks, href))


# ---------------------------------------------------------------------------------------------------
# Model -> canonical Markdown.

_ALWAYS = set("\\`*_[]<|~")
_MAY_ESCAPE = re.compile(r"[\\`*_\[\]<|~&@!#>\-+=.)]")
_ENTITY_LIKE = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_ORDERED_START = re.compile(r"[0-9]{1,9}")     # CommonMark: an ordered list number has 1-9 digits
_AUTOLINK_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>\x00-\x20]*\Z")
_EMAIL_RE = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\Z"
)


def render(blocks: tuple[Block, ...]) -> str:
    """Render canonical blocks as Markdown (no trailing newline; "" for an empty document).

    Markdown cannot place every mark everywhere (emphasis delimiters must "flank" words), so
    rendering a document that came from wiki markup or ADF may not parse back to the same marks;
    `finish` settles that.
    """
    return "\n\n".join(_render_block(b) for b in blocks)


def finish(blocks: tuple[Block, ...]) -> str:
    """Canonical Markdown for a document: render, then re-parse until nothing changes.

    A mark Markdown cannot express there reads back as its literal delimiters (escaped text), which
    are stable; in practice one extra pass settles it, the loop bound is a guard.
    """
    md = render(blocks)
    for _ in range(4):
        again = render(parse(md))
        if again == md:
            break
        md = again
    return md


def _render_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return _render_inlines(block.inlines)
    if isinstance(block, Heading):
        body = _render_inlines(block.inlines, heading=True)
        return "#" * block.level + (" " + body if body else "")
    if isinstance(block, CodeBlock):
        longest = max((len(r) for r in re.findall(r"`+", block.text)), default=0)
        fence = "`" * max(3, longest + 1)
        return f"{fence}{block.lang}\n{block.text}\n{fence}"
    if isinstance(block, ListBlock):
        return "\n".join(_render_list(block))
    if isinstance(block, Quote):
        inner = render(block.blocks)
        return "\n".join("> " + line if line else ">" for line in inner.split("\n"))
    if isinstance(block, Rule):
        return "---"
    if isinstance(block, Comment):
        return block.text
    if isinstance(block, Table):
        lines = []
        for k, row in enumerate(block.rows):
            cells = [_render_inlines(cell, table=True) for cell in row]
            lines.append("| " + " | ".join(cells) + " |")
            if k == 0:
                lines.append("| " + " | ".join("---" for _ in row) + " |")
        return "\n".join(lines)
    raise TypeError(block)


def _render_list(block: ListBlock) -> list[str]:
    lines: list[str] = []
    for k, item in enumerate(block.items, 1):
        marker = f"{k}. " if block.ordered else "- "
        pad = " " * len(marker)
        task = item.task
        # After a checkbox nothing opens a line: "- [ ] # x" is no heading.
        body = _render_inlines(item.body, line_start=task is None).split("\n") if item.body else []
        first = [] if task is None else [checkbox(task)]
        first += body[:1]
        lines.append(marker + " ".join(first) if first else marker.rstrip())
        lines.extend(pad + line for line in body[1:])
        for sub in item.sublists:
            lines.extend(pad + line for line in _render_list(sub))
    return lines


def _render_inlines(
    leaves: tuple[Inline, ...], *, heading: bool = False, table: bool = False, line_start: bool = True
) -> str:
    out: list[str] = []
    events = mark_events(leaves)
    prev: Inline | None = None
    skip = 0
    for k, (kind, value) in enumerate(events):
        if skip:
            skip -= 1
            continue
        if kind == "open":
            mark = str(value)
            if mark.startswith("link:"):
                auto = _autolink(mark[5:], events[k + 1 : k + 3])
                if auto is not None:
                    out.append("<" + auto + ">")
                    prev = events[k + 1][1]  # type: ignore[assignment]
                    line_start = False
                    skip = 2
                else:
                    out.append("[")
            else:
                out.append({"strong": "**", "em": "*", "strike": "~~"}[mark])
        elif kind == "close":
            mark = str(value)
            if mark.startswith("link:"):
                dest = mark[5:].replace("(", "\\(").replace(")", "\\)")
                out.append("](" + dest + ")")
            else:
                out.append({"strong": "**", "em": "*", "strike": "~~"}[mark])
        else:
            leaf = value
            assert isinstance(leaf, Inline)
            if leaf.kind == "br":
                out.append("\\\n")
                line_start = True
                prev = leaf
                continue
            if leaf.kind == "mention":
                out.append("@" + leaf.text)
            elif leaf.kind == "comment":
                out.append(leaf.text)
            elif leaf.kind == "code":
                out.append(_code_span(leaf.text, table))
            else:
                before_link = (
                    k + 1 < len(events)
                    and events[k + 1][0] == "open"
                    and str(events[k + 1][1]).startswith("link:")
                )
                out.append(_escape(leaf.text, prev, line_start, before_link, leaf.href is not None))
            line_start = False
            prev = leaf
    s = "".join(out)
    if heading and s.endswith("#") and not s.endswith("\\#"):
        s = s[:-1] + "\\#"
    return s


def _autolink(href: str, following: list[tuple[str, object]]) -> str | None:
    """The text of an autolink ``<text>`` if the link is exactly its own target, else None."""
    if len(following) != 2 or following[0][0] != "leaf" or following[1][0] != "close":
        return None
    leaf = following[0][1]
    assert isinstance(leaf, Inline)
    if leaf.kind != "text" or leaf.marks:
        return None
    t = leaf.text
    if _AUTOLINK_RE.match(t) and link_normaliser.normalizeLink(t) == href:
        if link_normaliser.normalizeLinkText(t) == t:
            return t
    if _EMAIL_RE.match(t) and link_normaliser.normalizeLink("mailto:" + t) == href:
        if link_normaliser.normalizeLinkText(t) == t:
            return t
    return None


def _code_span(code: str, table: bool) -> str:
    longest = max((len(r) for r in re.findall(r"`+", code)), default=0)
    fence = "`" * (longest + 1)
    if table:
        code = code.replace("|", "\\|")
    if (
        code.startswith("`")
        or code.endswith("`")
        or (code.startswith(" ") and code.endswith(" ") and code.strip(" "))
    ):
        code = " " + code + " "
    return fence + code + fence


def _escape(s: str, prev: Inline | None, line_start: bool, before_link: bool, in_link: bool) -> str:
    out: list[str] = []
    pos = 0
    # Only the characters `_MAY_ESCAPE` finds can need a backslash; the rest is copied in runs.
    for m in _MAY_ESCAPE.finditer(s):
        i = m.start()
        ch = s[i]
        esc = False
        if ch in _ALWAYS:
            esc = True
        elif ch == "&":
            esc = bool(_ENTITY_LIKE.match(s, i))
        elif ch == "@" and not in_link:
            word_before = is_word(s[i - 1]) if i else tail_is_word(prev)
            esc = not word_before and i + 1 < len(s) and is_word(s[i + 1])
        elif ch == "!" and i == len(s) - 1 and before_link:
            esc = True
        elif i == 0 and line_start and ch in "#>-+=":
            esc = True
        elif (line_start and ch in ".)" and _ORDERED_START.fullmatch(s, 0, i) is not None
              and (i + 1 == len(s) or s[i + 1] in " \t")):
            esc = True      # "1." / "12) " opening a line would start an ordered list ("1.5" would not)
        if esc:
            out.append(s[pos:i])
            out.append("\\")
            pos = i
    if not out:
        return s
    out.append(s[pos:])
    return "".join(out)
