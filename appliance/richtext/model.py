"""The document model every rich-text converter shares, and the canonicalisation that defines it.

Inline content is flat, as in ADF: a sequence of leaves (text, inline code, hard break, mention, task
checkbox, HTML comment), each text leaf carrying its marks (strong, em, strike) and link target;
`mark_events` recovers a properly nested form for renderers that need one.  `canonical_blocks` reduces
any document to what Markdown, Jira wiki markup and ADF can all express (the list of what degrades is
in markdown.py's docstring); every parser ends with it, which is what makes the round trips exact.

The exception is what only Markdown holds: HTML comments (`Comment` blocks and "comment"
leaves) stay in the canonical form, because GitLab keeps them (unshown) and a description must come
back from GitLab unchanged; comments.py takes them out for the Jira formats, which have nothing
like them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt

STRONG, EM, STRIKE = "strong", "em", "strike"
MARK_ORDER = (STRONG, EM, STRIKE)
_MARK_SET = frozenset(MARK_ORDER)

# A mention is "@" + login, not preceded by a word character (so e-mail addresses stay text).
LOGIN_RE = r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?"
MENTION_RE = re.compile(r"@(" + LOGIN_RE + r")")
_LOGIN_FULL = re.compile(LOGIN_RE + r"\Z")
_LANG_RE = re.compile(r"[A-Za-z0-9_+#.\-]+\Z")


# ---------------------------------------------------------------------------------------------------
# Document model.  Inline content is flat (like ADF): a list of leaves, each text leaf carrying its
# marks and link; nesting is recovered when rendering.


@dataclass(frozen=True)
class Inline:
    kind: str  # "text" | "code" | "br" | "mention" | "task" | "comment"
    text: str = ""  # text, code content, the mentioned login, "x" / " " (checked or not), "<!--...-->"
    marks: frozenset[str] = frozenset()
    href: str | None = None


@dataclass(frozen=True)
class Paragraph:
    inlines: tuple[Inline, ...]


@dataclass(frozen=True)
class Heading:
    level: int
    inlines: tuple[Inline, ...]


@dataclass(frozen=True)
class CodeBlock:
    lang: str
    text: str


@dataclass(frozen=True)
class ListItem:
    """A list item: one run of inline content and nested lists.

    A task list item (GitLab's ``- [ ] todo``) is one whose inlines start with a "task" leaf, the
    checkbox: it sits where GitLab shows it, and code that maps an item's inlines keeps it.
    """

    inlines: tuple[Inline, ...]
    sublists: tuple[ListBlock, ...] = ()

    @property
    def task(self) -> bool | None:
        """None for a plain item, else whether the task's checkbox is checked."""
        first = self.inlines[0] if self.inlines else None
        return None if first is None or first.kind != "task" else first.text == "x"

    @property
    def body(self) -> tuple[Inline, ...]:
        """The item's inline content without its checkbox."""
        return self.inlines[1:] if self.task is not None else self.inlines


@dataclass(frozen=True)
class ListBlock:
    ordered: bool
    items: tuple[ListItem, ...]


@dataclass(frozen=True)
class Quote:
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Rule:
    pass


@dataclass(frozen=True)
class Table:
    rows: tuple[tuple[tuple[Inline, ...], ...], ...]  # rows[0] is the header row


@dataclass(frozen=True)
class Comment:
    """An HTML comment on lines of its own (``<!-- ... -->``, as written, possibly over several lines)."""

    text: str


Block = Paragraph | Heading | CodeBlock | ListBlock | Quote | Rule | Table | Comment


def text(s: str, marks: frozenset[str] | set[str] = frozenset(), href: str | None = None) -> Inline:
    return Inline("text", s, frozenset(marks), href)


def checkbox(done: bool) -> str:
    """How every format but ADF writes a task's checkbox: GitLab's "[x]" / "[ ]"."""
    return "[x]" if done else "[ ]"


def is_comment(s: str) -> bool:
    """Whether ``s`` is exactly one HTML comment (CommonMark 0.31: ``<!-->``, ``<!--->``, or ``<!--``
    up to the first ``-->``)."""
    return s.startswith("<!--") and s.find("-->", 2) == len(s) - 3


# ---------------------------------------------------------------------------------------------------
# Canonicalisation: the one place that decides what the canonical form can hold.

link_normaliser = MarkdownIt("commonmark")


@lru_cache(maxsize=1024)  # a pure function of its argument; a document repeats its links in every pass
def canonical_href(href: str | None) -> str | None:
    """Normalise a link target the way the Markdown parser does; None if it is unsafe or empty."""
    if not href:
        return None
    href = href.strip()
    if not href or not link_normaliser.validateLink(href):
        return None
    return link_normaliser.normalizeLink(href)


def tail_is_word(leaf: Inline | None) -> bool:
    """Whether the leaf ends in a word character, which stops a following "@" being a mention."""
    if leaf is None:
        return False
    if leaf.kind == "mention":
        return True
    if leaf.kind == "text" and leaf.text:
        return is_word(leaf.text[-1])
    return False


def is_word(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def canonical_inlines(leaves: list[Inline] | tuple[Inline, ...], *, breaks: bool = True) -> tuple[Inline, ...]:
    """Reduce inline leaves to canonical form (see the module docstring); idempotent."""
    out: list[Inline] = []
    for leaf in leaves:
        kind = leaf.kind
        if kind == "text":
            s = leaf.text
            if "\r" in s or "\n" in s:
                s = s.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
            if s:
                marks = leaf.marks
                if marks and not marks <= _MARK_SET:
                    marks = marks & _MARK_SET
                href = canonical_href(leaf.href) if leaf.href else None
                unchanged = s is leaf.text and marks is leaf.marks and href == leaf.href
                out.append(leaf if unchanged else Inline("text", s, marks, href))
        elif kind == "code":
            s = leaf.text
            if "\r" in s or "\n" in s:
                s = s.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
            if s:
                out.append(Inline("code", s, frozenset(), canonical_href(leaf.href)))
        elif kind == "mention":
            if _LOGIN_FULL.match(leaf.text):
                out.append(Inline("mention", leaf.text))
            else:
                out.append(Inline("text", "@" + leaf.text))
        elif kind == "br":
            out.append(Inline("br") if breaks else Inline("text", " "))
        elif kind == "task":  # only a list item can hold a checkbox: elsewhere it is its text
            out.append(Inline("text", checkbox(leaf.text == "x") + " "))
        elif kind == "comment":
            s = leaf.text
            if "\r" in s or "\n" in s:
                s = s.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
            out.append(Inline("comment", s) if is_comment(s) else Inline("text", s))
    # The passes below only change leaves that carry a mark or link, or sit next to a mention.
    if any(leaf.marks or leaf.href is not None for leaf in out):
        out = _split_edges(out)
        for mark in MARK_ORDER:
            if any(mark in leaf.marks for leaf in out):
                _trim_runs(out, _mark_key(mark))
        if any(leaf.href is not None for leaf in out):
            _trim_runs(out, _href_key)
    if any(leaf.kind == "mention" for leaf in out):
        out = _space_mentions(out)
    out = _merge(out)
    stripped = _strip_lines(out)
    out = out if stripped is out else _merge(stripped)
    if breaks and any(leaf.kind == "comment" for leaf in out):
        out = _merge(_comments_end_lines(out))
    return tuple(out)


def _without(leaf: Inline, mark: str) -> Inline:
    return Inline(leaf.kind, leaf.text, leaf.marks - {mark}, leaf.href)


def _split_edges(leaves: list[Inline]) -> list[Inline]:
    """Split each marked or linked text leaf into leading whitespace, the rest, trailing whitespace.

    `_trim_runs` then sees every leaf either all whitespace or starting and ending with something
    else, which is all it needs to act exactly as it would on single characters.
    """
    out: list[Inline] = []
    for leaf in leaves:
        s = leaf.text
        marked = leaf.kind == "text" and (leaf.marks or leaf.href is not None)
        core = s.strip() if marked and (s[0].isspace() or s[-1].isspace()) else ""
        if not core:  # nothing to split off, or all whitespace
            out.append(leaf)
            continue
        head = s[: len(s) - len(s.lstrip())]
        tail = s[len(s.rstrip()) :]
        if head:
            out.append(Inline("text", head, leaf.marks, leaf.href))
        out.append(Inline("text", core, leaf.marks, leaf.href))
        if tail:
            out.append(Inline("text", tail, leaf.marks, leaf.href))
    return out


def _trim_runs(leaves: list[Inline], key) -> None:
    """Marks and links never start or end with whitespace (Markdown's flanking rules need that).

    Each leaf must be all whitespace or start and end with non-whitespace (see `_split_edges`).
    """
    i, n = 0, len(leaves)
    while i < n:
        k = key(leaves[i], None)
        if k is None:
            i += 1
            continue
        j = i
        while j < n and key(leaves[j], None) == k:
            j += 1
        a, b = i, j - 1
        while a <= b and leaves[a].kind == "text" and leaves[a].text.isspace():
            leaves[a] = key(leaves[a], True)
            a += 1
        while b >= a and leaves[b].kind == "text" and leaves[b].text.isspace():
            leaves[b] = key(leaves[b], True)
            b -= 1
        i = j


def _mark_key(mark: str):
    def key(leaf: Inline, drop: bool | None):
        if drop:
            return _without(leaf, mark)
        return True if mark in leaf.marks else None

    return key


def _href_key(leaf: Inline, drop: bool | None):
    if drop:
        return Inline(leaf.kind, leaf.text, leaf.marks)
    return leaf.href


def _space_mentions(leaves: list[Inline]) -> list[Inline]:
    """A mention must not touch a word character on either side, or it would read as another login."""
    out: list[Inline] = []
    for k, leaf in enumerate(leaves):
        if leaf.kind == "mention" and tail_is_word(out[-1] if out else None):
            out.append(Inline("text", " "))
        out.append(leaf)
        if leaf.kind == "mention" and k + 1 < len(leaves):
            nxt = leaves[k + 1]
            if nxt.kind == "text" and _continues_login(nxt.text, leaves[k + 2 : k + 3]):
                out.append(Inline("text", " "))
    return out


def _continues_login(s: str, after: list[Inline]) -> bool:
    if is_word(s[0]):
        return True
    if s[0] in ".-":
        nxt = s[1:2] or (after[0].text[:1] if after and after[0].kind == "text" else "")
        return bool(nxt) and is_word(nxt)
    return False


def _merge(leaves: list[Inline]) -> list[Inline]:
    """Adjacent text (or code) leaves with the same marks and link are one leaf."""
    out: list[Inline] = []
    for leaf in leaves:
        if not out or leaf.kind not in ("text", "code") or out[-1].kind != leaf.kind:
            out.append(leaf)
            continue
        prev = out[-1]
        if prev.marks == leaf.marks and prev.href == leaf.href:
            out[-1] = Inline(leaf.kind, prev.text + leaf.text, prev.marks, prev.href)
        else:
            out.append(leaf)
    return out


def _strip_lines(leaves: list[Inline]) -> list[Inline]:
    """No whitespace at the start or end of a line, no break at the start or end of a paragraph.

    Returns `leaves` itself when there is nothing to strip.
    """
    if not leaves:
        return leaves
    first, last = leaves[0], leaves[-1]
    if (
        (first.kind != "text" or first.text[:1].strip())
        and (last.kind != "text" or last.text[-1:].strip())
        and not any(leaf.kind == "br" for leaf in leaves)
    ):
        return leaves
    lines = _lines(leaves)
    stripped = []
    for line in lines:
        while line and line[0].kind == "text" and not line[0].text.lstrip():
            line.pop(0)
        if line and line[0].kind == "text":
            line[0] = Inline("text", line[0].text.lstrip(), line[0].marks, line[0].href)
        while line and line[-1].kind == "text" and not line[-1].text.rstrip():
            line.pop()
        if line and line[-1].kind == "text":
            line[-1] = Inline("text", line[-1].text.rstrip(), line[-1].marks, line[-1].href)
        stripped.append(line)
    while stripped and not stripped[0]:
        stripped.pop(0)
    while stripped and not stripped[-1]:
        stripped.pop()
    out: list[Inline] = []
    for k, line in enumerate(stripped):
        if k:
            out.append(Inline("br"))
        out.extend(line)
    return out


def _lines(leaves: list[Inline]) -> list[list[Inline]]:
    """`leaves` split at their line breaks (the breaks left out)."""
    lines: list[list[Inline]] = [[]]
    for leaf in leaves:
        if leaf.kind == "br":
            lines.append([])
        else:
            lines[-1].append(leaf)
    return lines


def _comments_end_lines(leaves: list[Inline]) -> list[Inline]:
    """No line but a lone line of comments starts with an HTML comment.

    Markdown (CommonMark, GitLab) reads a line that starts with ``<!--`` as raw HTML: the rest of
    the line would lose its formatting, a break before it would show as a backslash.  A comment that
    starts a line moves to its end, a line of comments alone joins the line before it (the first,
    the line after).  `leaves` must be stripped (`_strip_lines`).
    """
    lines = _lines(leaves)
    out: list[list[Inline]] = []
    pending: list[Inline] = []  # the comments of the lines of comments before the first other line
    for line in lines:
        k = 0
        while k < len(line) and (line[k].kind == "comment" or (line[k].kind == "text" and line[k].text.isspace())):
            k += 1
        comments = pending + [leaf for leaf in line[:k] if leaf.kind == "comment"]
        if k == len(line):
            if out:
                out[-1].extend(_spaced(comments))
            else:
                pending = comments
            continue
        content = line[k:]
        if comments:
            first = content[0]
            if first.kind == "text":
                content[0] = Inline("text", first.text.lstrip(), first.marks, first.href)
            content.extend(_spaced(comments))
        pending = []
        out.append(content)
    if not out:
        return _spaced(pending)[1:]
    return _join_lines([tuple(line) for line in out])


def _spaced(comments: list[Inline]) -> list[Inline]:
    return [leaf for comment in comments for leaf in (Inline("text", " "), comment)]


def flatten_lines(block: Block) -> list[tuple[Inline, ...]]:
    """A block's content as lines of inlines: how blocks degrade where only inline content fits."""
    if isinstance(block, Paragraph):
        return [block.inlines]
    if isinstance(block, Heading):
        return [
            tuple(
                Inline(i.kind, i.text, i.marks | {STRONG} if i.kind == "text" else i.marks, i.href)
                for i in block.inlines
            )
        ]
    if isinstance(block, CodeBlock):
        return [(Inline("code", line),) for line in block.text.split("\n") if line.strip()]
    if isinstance(block, Comment):
        return [(Inline("comment", block.text),)]
    if isinstance(block, Quote):
        return [line for b in block.blocks for line in flatten_lines(b)]
    if isinstance(block, ListBlock):
        lines = []
        for item in block.items:
            lines.append((text("- " if not block.ordered else "1. "),) + item.inlines)
            for sub in item.sublists:
                lines.extend(flatten_lines(sub))
        return lines
    if isinstance(block, Table):
        lines = []
        for row in block.rows:
            line: list[Inline] = []
            for k, cell in enumerate(row):
                if k:
                    line.append(text(" | "))
                line.extend(cell)
            lines.append(tuple(line))
        return lines
    return []


def _join_lines(lines: list[tuple[Inline, ...]]) -> list[Inline]:
    out: list[Inline] = []
    for line in lines:
        if out:
            out.append(Inline("br"))
        out.extend(line)
    return out


def canonical_blocks(blocks: list[Block] | tuple[Block, ...], *, in_quote: bool = False) -> tuple[Block, ...]:
    """Reduce a block sequence to canonical form (see the module docstring); idempotent."""
    out: list[Block] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            inl = canonical_inlines(block.inlines)
            if len(inl) == 1 and inl[0].kind == "comment":  # what Markdown reads back from it
                out.append(Comment(inl[0].text))
            elif inl:
                out.append(Paragraph(inl))
        elif isinstance(block, Comment):
            body = block.text.replace("\r\n", "\n").replace("\r", "\n").strip()
            if is_comment(body):
                out.append(Comment(body))
            elif body:
                out.append(Paragraph(canonical_inlines((text(body),))))
        elif isinstance(block, Heading):
            inl = canonical_inlines(block.inlines, breaks=False)
            if in_quote:
                if inl:
                    out.append(Paragraph(canonical_inlines(flatten_lines(Heading(block.level, inl))[0])))
            else:
                out.append(Heading(min(max(block.level, 1), 6), inl))
        elif isinstance(block, CodeBlock):
            lang = block.lang.strip().split(" ")[0] if block.lang.strip() else ""
            body = block.text.replace("\r\n", "\n").replace("\r", "\n")
            out.append(CodeBlock(lang if _LANG_RE.match(lang) else "", body))
        elif isinstance(block, ListBlock):
            items = tuple(it for it in (_canonical_item(i) for i in block.items) if it is not None)
            if not items:
                continue
            if out and isinstance(out[-1], ListBlock) and out[-1].ordered == block.ordered:
                out[-1] = ListBlock(block.ordered, out[-1].items + items)
            else:
                out.append(ListBlock(block.ordered, items))
        elif isinstance(block, Quote):
            inner = canonical_blocks(block.blocks, in_quote=True)
            if in_quote:
                out.extend(inner)
            elif inner:
                out.append(Quote(inner))
        elif isinstance(block, Rule):
            if not in_quote:
                out.append(Rule())
        elif isinstance(block, Table):
            table = _canonical_table(block)
            if table is None:
                continue
            if in_quote:
                out.extend(Paragraph(canonical_inlines(line)) for line in flatten_lines(table))
            else:
                out.append(table)
    return tuple(b for b in out if not (isinstance(b, Paragraph) and not b.inlines))


# GitLab's task list item marker: "[ ]", "[x]" or "[X]" opening the item, then white space (or nothing else).
_TASK_MARKER = re.compile(r"\[([ xX])\](?:[ \t]+|\Z)")


def _canonical_item(item: ListItem) -> ListItem | None:
    """A canonical list item; None for an empty one.

    An item whose text opens with "[ ] " or "[x] " (plain text) is a task item, whichever format it
    came from: Markdown and wiki markup only have that text, ADF has it where a taskList cannot be.
    """
    inl = canonical_inlines(item.inlines)
    first = inl[0] if inl else None
    if first is not None and first.kind == "text" and not first.marks and first.href is None:
        m = _TASK_MARKER.match(first.text)
        if m is not None and (m.end() > 3 or len(inl) == 1):
            rest = first.text[m.end() :]
            head = (Inline("task", " " if m.group(1) == " " else "x"),)
            inl = head + ((Inline("text", rest),) if rest else ()) + inl[1:]
    subs: list[ListBlock] = []
    for sub in canonical_blocks(item.sublists):
        if isinstance(sub, ListBlock):
            if subs and subs[-1].ordered == sub.ordered:
                subs[-1] = ListBlock(sub.ordered, subs[-1].items + sub.items)
            else:
                subs.append(sub)
    if not inl and not subs:
        return None
    return ListItem(inl, tuple(subs))


def _canonical_table(table: Table) -> Table | None:
    rows = [tuple(canonical_inlines(cell, breaks=False) for cell in row) for row in table.rows]
    rows = [row for row in rows if row]
    if not rows:
        return None
    width = max(len(row) for row in rows)
    return Table(tuple(row + ((),) * (width - len(row)) for row in rows))


def item_from_blocks(blocks: list[Block]) -> ListItem:
    """Build a list item from arbitrary blocks: lists nest, everything else joins the item's text."""
    lines: list[tuple[Inline, ...]] = []
    subs: list[ListBlock] = []
    for block in blocks:
        if isinstance(block, ListBlock):
            subs.append(block)
        else:
            lines.extend(flatten_lines(block))
    return ListItem(tuple(_join_lines(lines)), tuple(subs))


# ---------------------------------------------------------------------------------------------------
# Model -> events: the nesting of marks over flat leaves, shared by the Markdown and wiki renderers.


def leaf_marks(leaf: Inline) -> list[str]:
    marks = [m for m in MARK_ORDER if m in leaf.marks] if leaf.kind == "text" else []
    if leaf.href is not None and leaf.kind in ("text", "code"):
        marks.insert(0, "link:" + leaf.href)
    return marks


def mark_events(leaves: tuple[Inline, ...]) -> list[tuple[str, object]]:
    """[("open", mark) | ("close", mark) | ("leaf", Inline)] with properly nested marks.

    Marks that run longest open first (outermost), so a run is split as rarely as possible.
    """
    sets = [leaf_marks(leaf) for leaf in leaves]
    if not any(sets):
        return [("leaf", leaf) for leaf in leaves]
    events: list[tuple[str, object]] = []
    stack: list[str] = []
    for k, leaf in enumerate(leaves):
        want = sets[k]
        keep = 0
        while keep < len(stack) and stack[keep] in want:
            keep += 1
        for mark in reversed(stack[keep:]):
            events.append(("close", mark))
        del stack[keep:]

        def run(mark: str, start: int = k) -> int:
            n = start
            while n < len(leaves) and mark in sets[n]:
                n += 1
            return n - start

        new = [m for m in want if m not in stack]
        new.sort(key=lambda m: (-run(m), want.index(m)))
        for mark in new:
            events.append(("open", mark))
            stack.append(mark)
        events.append(("leaf", leaf))
    for mark in reversed(stack):
        events.append(("close", mark))
    return events
