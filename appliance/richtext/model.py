"""The document model every rich-text converter shares, and the canonicalisation that defines it.

Inline content is flat, as in ADF: a sequence of leaves (text, inline code, hard break, mention), each
text leaf carrying its marks (strong, em, strike) and link target; `mark_events` recovers a properly
nested form for renderers that need one.  `canonical_blocks` reduces any document to what Markdown,
Jira wiki markup and ADF can all express (the list of what degrades is in markdown.py's docstring);
every parser ends with it, which is what makes the round trips exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from markdown_it import MarkdownIt

STRONG, EM, STRIKE = "strong", "em", "strike"
MARK_ORDER = (STRONG, EM, STRIKE)
_MARK_SET = frozenset(MARK_ORDER)

# A mention is "@" + login, not preceded by a word character (so e-mail addresses stay text).
LOGIN_RE = r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?"
MENTION_RE = re.compile(r"@(" + LOGIN_RE + r")")
_LOGIN_FULL = re.compile(LOGIN_RE + r"\Z")
_LANG_RE = re.compile(r"[A-Za-z0-9_+#.\-]+\Z")


class MentionResolver(Protocol):
    """Maps the canonical user id (the ``login`` in ``@login``) to the remote app's user id and back.

    Jira Cloud: the accountId; Jira Server/Data Center: the username.  Returning None means "not a
    known user": the mention is then written as plain text (``@login`` or the display text).
    """

    def to_remote(self, user: str) -> str | None: ...

    def from_remote(self, remote_id: str, display: str | None = None) -> str | None: ...


class MentionMap:
    """A `MentionResolver` backed by a dict {canonical login: remote id}."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self._out = dict(mapping)
        self._in = {remote: user for user, remote in mapping.items()}

    def to_remote(self, user: str) -> str | None:
        return self._out.get(user)

    def from_remote(self, remote_id: str, display: str | None = None) -> str | None:
        return self._in.get(remote_id)


class IdentityMentions:
    """Used when no resolver is given: the remote id is the login itself (when it looks like one)."""

    def to_remote(self, user: str) -> str | None:
        return user

    def from_remote(self, remote_id: str, display: str | None = None) -> str | None:
        return remote_id if _LOGIN_FULL.match(remote_id) else None


# Jira Cloud accountIds are opaque strings of up to 128 characters; seen in the wild: 24 hex digits
# ("5b10ac8d82e05b22cc7d4ef5") and a prefix and UUID(s) joined by colons
# ("557058:f58131cb-b67d-43c7-b30d-6b58d40bd077").  A colon cannot be part of
# "@login", so `account_login` spells every id as a login, reversibly: ASCII letters, digits and
# "-" stand for themselves, a ":" between two letters/digits is "_", and any other character
# (also "_", ".", a ":" elsewhere, a "-" at the end) is "." + two lowercase hex digits per UTF-8
# byte.  A "_" therefore always sits between two letters/digits, where Markdown never reads it
# as emphasis, and hex-shaped ids are their own login.
_ID_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_ID_ESCAPE = re.compile(r"\.([0-9a-f]{2})")


def account_login(account_id: str) -> str | None:
    """The login that stands for Jira Cloud `account_id` in canonical Markdown (``@login``);
    None for an id that does not start with an ASCII letter or digit (no Atlassian format does).
    Injective: `account_id_of` gives the id back."""
    if not account_id or account_id[0] not in _ID_PLAIN:
        return None
    out: list[str] = []
    last = len(account_id) - 1
    for k, ch in enumerate(account_id):
        if ch in _ID_PLAIN or (ch == "-" and k < last):
            out.append(ch)
        elif ch == ":" and 0 < k < last and account_id[k - 1] in _ID_PLAIN and account_id[k + 1] in _ID_PLAIN:
            out.append("_")
        else:
            out.extend(f".{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def account_id_of(login: str) -> str | None:
    """The Jira Cloud accountId that `login` stands for (the inverse of `account_login`); None
    when `login` is not the login of any id (only the spelling `account_login` writes counts)."""
    try:
        raw = bytearray()
        pos = 0
        while pos < len(login):
            ch = login[pos]
            if ch == ".":
                m = _ID_ESCAPE.match(login, pos)
                if m is None:
                    return None
                raw.append(int(m.group(1), 16))
                pos = m.end()
                continue
            raw.extend(b":" if ch == "_" else ch.encode("ascii"))
            pos += 1
        account_id = raw.decode("utf-8", "surrogatepass")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    return account_id if account_login(account_id) == login else None


class AccountIdMentions:
    """The resolver for Jira Cloud rich text when no user map is given: the login is the
    accountId spelled by `account_login`."""

    def to_remote(self, user: str) -> str | None:
        return account_id_of(user)

    def from_remote(self, remote_id: str, display: str | None = None) -> str | None:
        return account_login(remote_id)


ACCOUNT_IDS = AccountIdMentions()


def resolver(mentions: MentionResolver | None) -> MentionResolver:
    return mentions if mentions is not None else IdentityMentions()


# ---------------------------------------------------------------------------------------------------
# Document model.  Inline content is flat (like ADF): a list of leaves, each text leaf carrying its
# marks and link; nesting is recovered when rendering.


@dataclass(frozen=True)
class Inline:
    kind: str  # "text" | "code" | "br" | "mention"
    text: str = ""  # text, code content, or the mentioned login
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
    inlines: tuple[Inline, ...]
    sublists: tuple[ListBlock, ...] = ()


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


Block = Paragraph | Heading | CodeBlock | ListBlock | Quote | Rule | Table


def text(s: str, marks: frozenset[str] | set[str] = frozenset(), href: str | None = None) -> Inline:
    return Inline("text", s, frozenset(marks), href)


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
    return tuple(out if stripped is out else _merge(stripped))


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
    lines: list[list[Inline]] = [[]]
    for leaf in leaves:
        if leaf.kind == "br":
            lines.append([])
        else:
            lines[-1].append(leaf)
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
            if inl:
                out.append(Paragraph(inl))
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


def _canonical_item(item: ListItem) -> ListItem | None:
    inl = canonical_inlines(item.inlines)
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
