"""The subset of JQL the Jira emulator understands, with Jira's own semantics and error texts.

Grammar: clause (AND clause)* [ORDER BY field [ASC|DESC] (, field [ASC|DESC])*], where a clause is
`field op value` (op: = != > >= < <=) or `field [not] in (v1, v2, ...)`, and a value may be the
function `currentUser()` (the searching user; for the user fields only). Fields: project, key,
id, issuetype, status, labels, assignee, reporter, creator, updated, created, and entity
properties `issue.property[<key>].<path>`. OR and parentheses are real JQL but not emulated: they
are refused with a 400 naming the construct, so a connector that relies on them fails loudly.

Dates follow Jira: "yyyy/MM/dd HH:mm", "yyyy-MM-dd HH:mm", "yyyy/MM/dd" or "yyyy-MM-dd",
interpreted in the searching user's time zone, at MINUTE precision (there is no way to say
seconds); the comparison itself is against the full-precision timestamp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|(?P<op>>=|<=|!=|=|>|<|~)'
                    r'|(?P<punct>[(),])|(?P<word>[^\s"\'(),=<>!~]+))')
_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")
FIELDS = {"project", "key", "issuekey", "id", "issuetype", "type", "status", "labels", "assignee",
          "reporter", "creator", "updated", "updateddate", "created", "createddate"}
FUNCTIONS = {"currentuser": "currentUser"}
_PROPERTY = re.compile(r"^issue\.property\[([^\]]+)\]\.(.+)$")


class JqlError(ValueError):
    """A query Jira would refuse with 400; the message is Jira's wording."""


@dataclass(frozen=True)
class Function:
    """A JQL function call as a value, e.g. Function("currentUser") for `currentUser()`."""
    name: str


@dataclass
class Clause:
    field: str
    op: str            # "=", "!=", ">", ">=", "<", "<=", "in", "not in"
    values: list[str | Function]


@dataclass
class Query:
    clauses: list[Clause] = field(default_factory=list)
    order: list[tuple[str, str]] = field(default_factory=list)   # (field, "ASC"|"DESC")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise JqlError(f"Error in the JQL Query: The character '{text[pos:].strip()[:1]}' is a "
                           f"reserved JQL character. (line 1, character {pos + 1})")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append((kind, value))
        pos = match.end()
    return out


def parse(text: str) -> Query:
    """Parse `text`; raises JqlError for syntax Jira rejects or this emulator does not cover."""
    tokens = _tokens(text or "")
    query = Query()
    i = 0

    def peek(offset: int = 0) -> tuple[str, str] | None:
        return tokens[i + offset] if i + offset < len(tokens) else None

    def word(tok: tuple[str, str] | None, *expected: str) -> bool:
        return tok is not None and tok[0] == "word" and tok[1].lower() in expected

    def value(expected: str) -> str | Function:
        """The value at the position (a literal, or a function call); advances past it."""
        nonlocal i
        tok = peek()
        if tok is None or tok[0] not in ("word", "str"):
            raise JqlError(expected)
        i += 1
        if tok[0] == "word" and peek() == ("punct", "("):
            if peek(1) != ("punct", ")"):
                raise JqlError("Error in the JQL Query: Expecting ')' after the function's "
                               "arguments (the emulator knows functions without arguments).")
            i += 2
            known = FUNCTIONS.get(tok[1].lower())
            if known is None:
                raise JqlError(f"Unable to find JQL function '{tok[1]}()'.")
            return Function(known)
        return tok[1]

    while i < len(tokens) and not (word(peek(), "order") and word(peek(1), "by")):
        if query.clauses:
            if word(peek(), "or"):
                raise JqlError("Error in the JQL Query: OR is not supported by the emulator.")
            if not word(peek(), "and"):
                raise JqlError(f"Error in the JQL Query: Expecting either 'OR' or 'AND' but got "
                               f"'{peek()[1]}'.")
            i += 1
        tok = peek()
        if tok is None or tok[0] not in ("word", "str"):
            raise JqlError("Error in the JQL Query: Expecting a field name.")
        name = tok[1]
        lowered = name.lower()
        if lowered not in FIELDS and not _PROPERTY.match(name):
            raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
        i += 1
        tok = peek()
        if word(tok, "not") and word(peek(1), "in"):
            op, i = "not in", i + 2
        elif word(tok, "in"):
            op, i = "in", i + 1
        elif tok is not None and tok[0] == "op" and tok[1] != "~":
            op, i = tok[1], i + 1
        else:
            raise JqlError(f"Error in the JQL Query: Expecting operator but got "
                           f"'{tok[1] if tok else '<EOF>'}'.")
        values: list[str] = []
        if op in ("in", "not in"):
            if peek() != ("punct", "("):
                raise JqlError("Error in the JQL Query: Expecting '(' after IN.")
            i += 1
            while True:
                values.append(value("Error in the JQL Query: Expecting a value in the list."))
                if peek() == ("punct", ","):
                    i += 1
                    continue
                if peek() == ("punct", ")"):
                    i += 1
                    break
                raise JqlError("Error in the JQL Query: Expecting ',' or ')'.")
        else:
            values.append(value("Error in the JQL Query: Expecting either a value, list or function "
                                "but got '<EOF>'."))
        query.clauses.append(Clause(lowered if lowered in FIELDS else name, op, values))

    if i < len(tokens):
        i += 2  # ORDER BY
        while i < len(tokens):
            tok = peek()
            if tok is None or tok[0] not in ("word", "str"):
                raise JqlError("Error in the JQL Query: Expecting a field name after ORDER BY.")
            direction = "ASC"
            i += 1
            if word(peek(), "asc", "desc"):
                direction = peek()[1].upper()
                i += 1
            query.order.append((tok[1].lower(), direction))
            if peek() == ("punct", ","):
                i += 1
            elif peek() is not None:
                raise JqlError(f"Error in the JQL Query: Expecting ',' but got '{peek()[1]}'.")
    return query


def parse_date(value: str, field_name: str, tz: ZoneInfo) -> datetime:
    """A JQL date literal as an aware instant in `tz` (the user's zone), minute precision."""
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    raise JqlError(f"Date value '{value}' for field '{field_name}' is invalid. Valid formats "
                   f"include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or "
                   f"a period format e.g. '-5d', '4w 2d'.")


def property_path(name: str) -> tuple[str, list[str]] | None:
    """("tandem.sync", ["marker"]) for `issue.property[tandem.sync].marker`, else None."""
    match = _PROPERTY.match(name)
    if not match:
        return None
    return match.group(1), match.group(2).split(".")


def compare(left, op: str, right) -> bool:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if left is None:
        return False
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]
