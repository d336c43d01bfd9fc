"""Jira wiki markup (Jira Server/Data Center REST v2) <-> the canonical document model.

The parser is written here rather than taken from jira2markdown (0.5.3, checked against this
renderer): jira2markdown reads a newline inside a paragraph (a line break in Jira) as a soft break, so
breaks were lost on the way back, and it does not know the ``{*}brace{*}`` form of marks that touch a
word; and the round trip needs one shared notion of what is markup and what must be escaped, which a
parser and renderer living side by side give.

Rendering: ``*strong*``, ``_em_``, ``-strike-`` (the ``{*}x{*}`` brace form where the mark touches a
letter or digit, e.g. inside a word), ``{{code}}``, ``[text|url]`` / ``[url]``, ``[~username]``,
``h1.``-``h6.``, ``*``/``#`` lists (``*#`` nesting), ``{code:lang}`` / ``{noformat}``, ``{quote}``,
``----``, ``||header||`` / ``|cell|`` tables.  A hard break is a newline inside a paragraph and
``\\\\`` inside list items.  A literal backslash is written ``&#92;`` (``\\\\`` means a line break).
Wiki markup has no checkboxes: a task list item is an item opening with the text "[ ]" or "[x]",
written ``\\[ \\]`` / ``\\[x\\]`` (brackets are link syntax in wiki markup), which Jira shows
as "[ ]" / "[x]" and which reads back as the task (so does ``[ ]`` typed by hand).  HTML comments
are left out.

Parsing also accepts ``bq.``, ``- `` bullets, ``??citation??`` (emphasis); it degrades ``+underline+``,
``^sup^``, ``~sub~``, ``{color}`` and images/attachments (their file name) to plain text, and
``{panel}``/``{info}``/``{note}``/``{warning}``/``{tip}``/``{expand}`` to their content.  Jira's
emoticons (``:)``, ``(y)``) and dash ligatures (``--``) are left as typed.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from .comments import without_comments
from .model import (
    EM,
    STRIKE,
    STRONG,
    Block,
    CodeBlock,
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
    mark_events,
    text,
)
from .users import MentionResolver

_DELIM = {STRONG: "*", EM: "_", STRIKE: "-"}
_MARK_OF = {"*": STRONG, "_": EM, "-": STRIKE, "??": EM, "+": None, "^": None, "~": None}
_SIMPLE = "*_-+^~"
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|amp|lt|gt|quot|apos|nbsp);")
_ENTITY_LIKE = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_URLISH = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:|www\.", re.I)
_MARKUP = re.compile(r"[\\&{}\[\]|*_\-+^~?!]")  # what `_escape_text` may escape; at a line start also "#."
_MARKUP_AT_START = re.compile(r"[\\&{}\[\]|*_\-+^~?!#.]")


def render(blocks: tuple[Block, ...], mentions: MentionResolver) -> str:
    """Jira wiki markup for canonical blocks (less their HTML comments)."""
    return _render_blocks(without_comments(blocks), mentions)


def _render_blocks(blocks: tuple[Block, ...], mentions: MentionResolver) -> str:
    return "\n\n".join(_render_block(b, mentions) for b in blocks)


def _render_block(block: Block, mentions: MentionResolver) -> str:
    if isinstance(block, Paragraph):
        return _render_inlines(block.inlines, mentions, br="\n")
    if isinstance(block, Heading):
        return f"h{block.level}. " + _render_inlines(block.inlines, mentions, br=" ", line_start=False)
    if isinstance(block, CodeBlock):
        if block.lang and "{code}" not in block.text:
            return "{code:" + block.lang + "}\n" + block.text + "\n{code}"
        if "{noformat}" not in block.text:
            return "{noformat}\n" + block.text + "\n{noformat}"
        return "{code}\n" + block.text + "\n{code}"
    if isinstance(block, ListBlock):
        return "\n".join(_render_list(block, "", mentions))
    if isinstance(block, Quote):
        return "{quote}\n" + _render_blocks(block.blocks, mentions) + "\n{quote}"
    if isinstance(block, Rule):
        return "----"
    if isinstance(block, Table):
        lines = []
        for k, row in enumerate(block.rows):
            sep = "||" if k == 0 else "|"
            cells = [_render_inlines(c, mentions, br=" ", line_start=False) or " " for c in row]
            lines.append(sep + sep.join(cells) + sep)
        return "\n".join(lines)
    raise TypeError(block)


def _render_list(block: ListBlock, prefix: str, mentions: MentionResolver) -> list[str]:
    prefix += "#" if block.ordered else "*"
    lines = []
    for item in block.items:
        body = _render_inlines(item.body, mentions, br="\\\\", line_start=False)
        if item.task is not None:
            body = _escape_text(checkbox(item.task), None, False, False) + (" " + body if body else "")
        lines.append(prefix + (" " + body if body else ""))
        for sub in item.sublists:
            lines.extend(_render_list(sub, prefix, mentions))
    return lines


@dataclass
class _Delim:
    mark: str
    brace: bool = False


def _render_inlines(
    leaves: tuple[Inline, ...], mentions: MentionResolver, *, br: str, line_start: bool = True
) -> str:
    pieces: list[object] = []  # str, or _Delim placeholders resolved once neighbours are known
    pairs: list[tuple[_Delim, int, int]] = []
    open_at: dict[str, tuple[_Delim, int]] = {}
    events = mark_events(leaves)
    at_start = line_start
    for k, (kind, value) in enumerate(events):
        if kind == "open":
            mark = str(value)
            if mark.startswith("link:"):
                pieces.append("[")
            else:
                d = _Delim(mark)
                open_at[mark] = (d, len(pieces))
                pieces.append(d)
        elif kind == "close":
            mark = str(value)
            if mark.startswith("link:"):
                href = mark[5:]
                inner = "".join(p for p in pieces[_last_index(pieces, "[") + 1 :] if isinstance(p, str))
                if (
                    inner == _escape_text(href, None, False, True)
                    and _URLISH.match(href)
                    and len(pieces) - _last_index(pieces, "[") == 2
                ):
                    pieces.append("]")
                else:
                    pieces.append("|" + href + "]")
            else:
                d, start = open_at.pop(mark)
                pairs.append((d, start, len(pieces)))
                pieces.append(d)
        else:
            leaf = value
            assert isinstance(leaf, Inline)
            if leaf.kind == "br":
                nxt = events[k + 1][1] if k + 1 < len(events) else None
                # An empty line would end the paragraph: a break followed by another break is "\\\\".
                pieces.append("\\\\" if isinstance(nxt, Inline) and nxt.kind == "br" else br)
                at_start = line_start and br == "\n"
                continue
            if leaf.kind == "mention":
                remote = mentions.to_remote(leaf.text)
                pieces.append(
                    "[~" + remote + "]" if remote else _escape_text("@" + leaf.text, _prev(pieces), False, False)
                )
            elif leaf.kind == "code":
                pieces.append("{{" + _escape_text(leaf.text, "{", False, True) + "}}")
            else:
                following = events[k + 1] if k + 1 < len(events) else None
                last = following is None or (following[0] == "leaf" and following[1].kind == "br")  # type: ignore[union-attr]
                pieces.append(_escape_text(leaf.text, _prev(pieces), at_start, last))
            at_start = False
    for d, start, end in pairs:
        d.brace = _alnum(_prev(pieces[:start])) or _alnum(_next(pieces[end + 1 :]))
    return "".join(
        p if isinstance(p, str) else ("{" + _DELIM[p.mark] + "}" if p.brace else _DELIM[p.mark]) for p in pieces
    )


def _last_index(pieces: list[object], s: str) -> int:
    return next((k for k in range(len(pieces) - 1, -1, -1) if pieces[k] == s), -1)


def _prev(pieces: list[object]) -> str | None:
    p = pieces[-1] if pieces else None
    return None if p is None else p[-1] if isinstance(p, str) and p else "}"


def _next(pieces: list[object]) -> str | None:
    p = pieces[0] if pieces else None
    return None if p is None else p[0] if isinstance(p, str) and p else "{"


def _alnum(ch: str | None) -> bool:
    return ch is not None and ch.isalnum()


def _escape_text(s: str, prev: str | None, line_start: bool, last: bool) -> str:
    """Escape ``s`` so that nothing in it reads as markup, wherever it ends up.

    Works right to left: whether a delimiter can open or close depends on the characters around it
    as written, and the next character may itself have just been escaped.
    """
    if not (_MARKUP_AT_START if line_start else _MARKUP).search(s):
        return s
    out: list[str] = []
    after: str | None = None if last else "\x00"  # "\x00": unknown, assume the worst
    for i in range(len(s) - 1, -1, -1):
        ch = s[i]
        before = s[i - 1] if i else prev
        if ch == "\\":
            piece = "&#92;"
        elif ch == "&" and _ENTITY_LIKE.match(s, i):
            piece = "&amp;"
        else:
            esc = ch in "{}[]|"
            if ch in _SIMPLE:
                can_open = not _alnum(before) and after is not None and not after.isspace() and after != ch
                can_close = before is not None and not before.isspace() and not _alnum(after)
                esc = can_open or can_close
            elif ch == "?":
                esc = after == "?" or after == "\x00"
            elif ch == "!":
                esc = after is not None and not after.isspace()
            if i == 0 and line_start:
                esc = esc or ch in "*#-"
            if ch == "." and line_start and re.fullmatch(r"h[1-6]|bq", s[:i]):
                esc = True  # "h1\." and "bq\." are text, not a heading or a quote
            piece = "\\" + ch if esc else ch
        out.append(piece)
        after = piece[0]
    return "".join(reversed(out))


# ---------------------------------------------------------------------------------------------------
# wiki -> model

_CODE_OPEN = re.compile(r"[ \t]*\{(code|noformat)(:[^}\n]*)?\}")
_QUOTE_OPEN = re.compile(r"[ \t]*\{quote\}")
_PANEL_OPEN = re.compile(r"[ \t]*\{(panel|info|note|warning|tip|expand)(:[^}\n]*)?\}")
_HEADING = re.compile(r"[ \t]*h([1-6])\.(?:[ \t]+(.*))?\Z")
_BQ = re.compile(r"[ \t]*bq\.(?:[ \t]+(.*))?\Z")
_RULE = re.compile(r"[ \t]*-{4,}[ \t]*\Z")
_LIST = re.compile(r"[ \t]*([*#]+|-)(?:[ \t]+(.*))?\Z")
_BRACE_DELIM = re.compile(r"\{(\*|_|-|\+|\^|~|\?\?)\}")
_BRACE_IGNORED = re.compile(r"\{(color|anchor)(:[^}]*)?\}")
_IMAGE = re.compile(r"!([^\s!|][^!|\n]*?)(\|[^!\n]*)?!")
_TEXT_RUN = re.compile(r"[^\\{\[!&*_\-+^~?]+")  # characters `_tokenise` always copies


def parse(source: str, mentions: MentionResolver) -> tuple[Block, ...]:
    """Canonical blocks for Jira wiki markup."""
    src = (source or "").replace("\r\n", "\n").replace("\r", "\n")
    return canonical_blocks(_parse_blocks(src, mentions))


def _parse_blocks(src: str, mentions: MentionResolver) -> list[Block]:
    out: list[Block] = []
    para: list[str] = []
    lists: list[tuple[str, str]] = []
    table: list[str] = []

    def flush() -> None:
        if para:
            leaves: list[Inline] = []
            for line in para:
                if leaves:
                    leaves.append(Inline("br"))
                leaves.extend(_parse_inline(line.strip(), mentions))
            out.append(Paragraph(tuple(leaves)))
            para.clear()
        if lists:
            out.extend(_build_lists(lists, mentions))
            lists.clear()
        if table:
            out.append(Table(tuple(_parse_row(row, mentions) for row in table)))
            table.clear()

    pos = 0
    while pos <= len(src):
        nl = src.find("\n", pos)
        end = len(src) if nl < 0 else nl
        line = src[pos:end]
        nxt = end + 1
        macro = "{" in line  # every block macro starts with "{": most lines need none of the three matches
        m = _CODE_OPEN.match(line) if macro else None
        if m:
            flush()
            tag = "{" + m.group(1) + "}"
            body_start = pos + m.end()
            close = src.find(tag, body_start)
            close = len(src) if close < 0 else close
            body = src[body_start:close]
            body = body[1:] if body.startswith("\n") else body
            body = body[:-1] if body.endswith("\n") else body
            out.append(CodeBlock(_lang(m.group(1), m.group(2)), body))
            pos = _after_tag(src, close + len(tag))
            continue
        m = (_QUOTE_OPEN.match(line) or _PANEL_OPEN.match(line)) if macro else None
        if m:
            flush()
            name = "quote" if m.re is _QUOTE_OPEN else m.group(1)
            tag = "{" + name + "}"
            close = src.find(tag, pos + m.end())
            close = len(src) if close < 0 else close
            inner = _parse_blocks(src[pos + m.end() : close], mentions)
            if name == "quote":
                out.append(Quote(tuple(inner)))
            else:
                title = re.search(r"title=([^|}]*)", m.group(2) or "")
                if title:
                    out.append(Paragraph((text(title.group(1).strip(), {STRONG}),)))
                out.extend(inner)
            pos = _after_tag(src, close + len(tag))
            continue
        stripped = line.strip()
        if not stripped:
            flush()
        elif m := _HEADING.match(line):
            flush()
            out.append(Heading(int(m.group(1)), tuple(_parse_inline((m.group(2) or "").strip(), mentions))))
        elif m := _BQ.match(line):
            flush()
            out.append(Quote((Paragraph(tuple(_parse_inline((m.group(1) or "").strip(), mentions))),)))
        elif _RULE.match(line):
            flush()
            out.append(Rule())
        elif (m := _LIST.match(line)) and not table:
            if para:
                flush()
            lists.append((m.group(1), (m.group(2) or "").strip()))
        elif stripped.startswith("|"):
            if para or lists:
                flush()
            table.append(stripped)
        else:
            if lists or table:
                flush()
            para.append(line)
        pos = nxt
        if nl < 0:
            break
    flush()
    return out


def _after_tag(src: str, pos: int) -> int:
    """Continue after a closing macro tag: skip the rest of its line when that is blank."""
    nl = src.find("\n", pos)
    rest = src[pos:] if nl < 0 else src[pos:nl]
    if not rest.strip():
        return len(src) + 1 if nl < 0 else nl + 1
    return pos


def _lang(name: str, params: str | None) -> str:
    if name != "code" or not params:
        return ""
    for param in params[1:].split("|"):
        param = param.strip()
        if param.lower().startswith("language="):
            return param.split("=", 1)[1].strip()
        if "=" not in param and param:
            return param
    return ""


@dataclass
class _PList:
    ordered: bool
    items: list[list] = field(default_factory=list)  # [inlines, [sublists]]


def _build_lists(lines: list[tuple[str, str]], mentions: MentionResolver) -> list[Block]:
    roots: list[_PList] = []
    stack: list[_PList] = []
    for prefix, body in lines:
        prefix = "*" if prefix == "-" else prefix
        depth = len(prefix)
        while len(stack) > depth:
            stack.pop()
        if len(stack) == depth and stack[-1].ordered != (prefix[-1] == "#"):
            stack.pop()
        while len(stack) < depth:
            new = _PList(prefix[len(stack)] == "#")
            if not stack:
                roots.append(new)
            else:
                if not stack[-1].items:
                    stack[-1].items.append([(), []])
                stack[-1].items[-1][1].append(new)
            stack.append(new)
        stack[-1].items.append([tuple(_parse_inline(body, mentions)), []])
    return [_freeze(p) for p in roots]


def _freeze(plist: _PList) -> ListBlock:
    return ListBlock(
        plist.ordered, tuple(ListItem(tuple(i[0]), tuple(_freeze(s) for s in i[1])) for i in plist.items)
    )


def _parse_row(row: str, mentions: MentionResolver) -> tuple[tuple[Inline, ...], ...]:
    cells: list[str] = []
    cur: list[str] = []
    i, depth = 0, 0
    while i < len(row):
        ch = row[i]
        if ch == "\\" and i + 1 < len(row):
            cur.append(row[i : i + 2])
            i += 2
            continue
        if row.startswith("{{", i):
            close = row.find("}}", i + 2)
            if close > 0:
                cur.append(row[i : close + 2])
                i = close + 2
                continue
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        if ch == "|" and not depth:
            cells.append("".join(cur))
            cur = []
            i += 2 if row.startswith("||", i) else 1
            continue
        cur.append(ch)
        i += 1
    if "".join(cur).strip():
        cells.append("".join(cur))
    if cells and cells[0] == "" and row.startswith("|"):
        cells = cells[1:]
    return tuple(tuple(_parse_inline(c.strip(), mentions)) for c in cells)


# Inline parsing: tokenise (escapes, code, links, delimiters), match delimiters with a stack, then
# flatten to leaves carrying their marks.


@dataclass
class _Tok:
    kind: str  # "text" | "delim" | "group" | "leaf"
    value: str = ""
    brace: bool = False
    can_open: bool = False
    can_close: bool = False
    leaves: list[Inline] = field(default_factory=list)


def _parse_inline(s: str, mentions: MentionResolver) -> list[Inline]:
    toks = _tokenise(s, mentions)
    out: list[_Tok] = []
    stack: list[tuple[_Tok, int]] = []
    for tok in toks:
        if tok.kind == "delim":
            match = None
            for k in range(len(stack) - 1, -1, -1):
                o = stack[k][0]
                if o.value == tok.value and o.brace == tok.brace and (tok.brace or tok.can_close):
                    match = k
                    break
            if match is not None and stack[match][1] < len(out):
                opener, idx = stack[match]
                del stack[match:]
                inner = _flatten(out[idx + 1 :])
                mark = _MARK_OF[tok.value]
                if mark:
                    inner = [
                        Inline(x.kind, x.text, x.marks | {mark}, x.href) if x.kind == "text" else x for x in inner
                    ]
                del out[idx:]
                out.append(_Tok("leaf", leaves=inner))
                continue
            if tok.brace or tok.can_open:
                stack.append((tok, len(out)))
            out.append(tok)
        else:
            out.append(tok)
    return _flatten(out)


def _flatten(toks: list[_Tok]) -> list[Inline]:
    leaves: list[Inline] = []
    for tok in toks:
        if tok.kind == "leaf":
            leaves.extend(tok.leaves)
        elif tok.kind == "delim":
            leaves.append(text("{" + tok.value + "}" if tok.brace else tok.value))
        else:
            leaves.append(text(tok.value))
    return leaves


def _tokenise(s: str, mentions: MentionResolver) -> list[_Tok]:
    toks: list[_Tok] = []
    buf: list[str] = []

    def emit(tok: _Tok) -> None:
        if buf:
            toks.append(_Tok("text", "".join(buf)))
            buf.clear()
        toks.append(tok)

    i, n = 0, len(s)
    while i < n:
        if m := _TEXT_RUN.match(s, i):
            buf.append(m.group())
            i = m.end()
            continue
        ch = s[i]
        if ch == "\\":
            if s.startswith("\\\\", i):
                emit(_Tok("leaf", leaves=[Inline("br")]))
                i += 2
            elif i + 1 < n and _escapable(s[i + 1]):
                buf.append(s[i + 1])
                i += 2
            else:
                buf.append(ch)
                i += 1
            continue
        if s.startswith("{{", i):
            close = _find_unescaped(s, "}}", i + 2)
            if close > i + 2:
                emit(_Tok("leaf", leaves=[Inline("code", _unescape(s[i + 2 : close]))]))
                i = close + 2
                continue
        if ch == "{":
            m = _BRACE_DELIM.match(s, i)
            if m:
                emit(_Tok("delim", m.group(1), brace=True))
                i = m.end()
                continue
            m = _BRACE_IGNORED.match(s, i)
            if m:  # colour and anchors: presentation only, the text stays
                i = m.end()
                continue
        if ch == "[":
            close = _find_unescaped(s, "]", i + 1)
            if close > i:
                emit(_Tok("leaf", leaves=_link(s[i + 1 : close], mentions)))
                i = close + 1
                continue
        if ch == "!" and (m := _IMAGE.match(s, i)):
            emit(_Tok("leaf", leaves=[text(m.group(1))]))
            i = m.end()
            continue
        if ch == "&" and (m := _ENTITY.match(s, i)):
            buf.append(html.unescape(m.group(0)))
            i = m.end()
            continue
        if ch in _SIMPLE or s.startswith("??", i):
            width = 2 if ch == "?" else 1
            before = s[i - 1] if i else None
            after = s[i + width] if i + width < n else None
            can_open = not _alnum(before) and after is not None and not after.isspace() and after != ch
            can_close = before is not None and not before.isspace() and not _alnum(after)
            emit(_Tok("delim", s[i : i + width], can_open=can_open, can_close=can_close))
            i += width
            continue
        buf.append(ch)
        i += 1
    if buf:
        toks.append(_Tok("text", "".join(buf)))
    return toks


def _escapable(ch: str) -> bool:
    return not ch.isalnum() and not ch.isspace()


def _find_unescaped(s: str, needle: str, start: int) -> int:
    i = start
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s.startswith(needle, i):
            return i
        i += 1
    return -1


def _unescape(s: str) -> str:
    # only punctuation is escaped: "C:\temp" keeps its backslash
    s = re.sub(r"\\(.)", lambda m: m.group(1) if _escapable(m.group(1)) else m.group(0), s)
    return _ENTITY.sub(lambda m: html.unescape(m.group(0)), s)


def _link(body: str, mentions: MentionResolver) -> list[Inline]:
    bar = _find_unescaped(body, "|", 0)
    if bar >= 0 and body[bar + 1 :].lstrip().startswith("~"):  # [Display Name|~user]: still a mention
        body = body[bar + 1 :].lstrip()
    if body.startswith("~"):
        remote = body[1:].strip()
        if remote.lower().startswith("accountid:"):
            remote = remote[10:]
        login = mentions.from_remote(remote)
        return [Inline("mention", login)] if login is not None else [text("@" + remote)]
    bar = _find_unescaped(body, "|", 0)
    if bar >= 0:
        label, target = body[:bar], body[bar + 1 :].split("|")[0].strip()
        leaves = _parse_inline(label, mentions) if label.strip() else [text(target)]
        return [Inline(x.kind, x.text, x.marks, target) if x.kind in ("text", "code") else x for x in leaves]
    target = body.strip()
    if target.startswith("^"):  # an attachment: its name
        return [text(target[1:])]
    if target.startswith("#"):  # an anchor
        return [text(target[1:])]
    if _URLISH.match(target):
        return [text(_unescape(target), href=target)]
    return [text("[" + _unescape(body) + "]")]
