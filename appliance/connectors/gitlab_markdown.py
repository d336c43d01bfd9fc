"""What the GitLab connector reads and writes inside GitLab Markdown: the sync-marker footer,
the footer of its attachment notes, and upload links (split from gitlab.py, which uses it).

Upload links: GitLab links an upload project-relative, `[name](/uploads/<secret>/<file>)`,
which means nothing outside the project. `absolute_uploads` puts the project's web URL in
front of such links in text read from GitLab; `relative_uploads`, its inverse, takes it off
again in text written to GitLab, so GitLab keeps its own form (which it rewrites when an issue
moves) and a read -> write -> read round trip gives the same text. Both touch a link only in
the same places: a Markdown link or image target `](...)`, a reference definition `]: ...`
and an HTML `src=`/`href=`; a path in code or prose is left alone both ways.
"""

from __future__ import annotations

import re

MARKER = re.compile(r"\s*<!-- tandem:sync:([A-Za-z0-9_.:-]+) -->\s*$")
ATTACHMENT_NOTE = re.compile(r"<!-- tandem:attachment size=(\d+) -->")
# An upload link as GitLab stores it: `base` is "" (relative) or what precedes /uploads/.
UPLOAD_LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<base>[^)\s]*?)/uploads/(?P<secret>[0-9a-f]{32})/"
                         r"(?P<file>[^)\s]+)\)")
_TARGET = r"(\]\(|\]:[ \t]*|\b(?:src|href)=[\"']?)"
_RELATIVE = re.compile(_TARGET + r"/uploads/(?=[0-9a-f]{32}/)")
_ANY_UPLOAD = re.compile(r"/uploads/[0-9a-f]{32}/")


def split_marker(text: str | None) -> tuple[str, str | None]:
    """(text without the marker footer, marker or None)."""
    text = text or ""
    match = MARKER.search(text)
    if match is None:
        return text, None
    return text[:match.start()], match.group(1)


def with_marker(text: str | None, marker: str | None) -> str:
    body, _ = split_marker(text)
    return f"{body}\n\n<!-- tandem:sync:{marker} -->" if marker else body


def has_upload_link(text: str | None) -> bool:
    """Whether `text` may hold an upload link in either form (then the project's URL is needed)."""
    return bool(text) and _ANY_UPLOAD.search(text) is not None


def project_web_url(issue_web_url: str) -> str:
    """The project's web URL from one of its issues' (`<project>/-/issues/7`, `/-/work_items/7`, ...):
    GitLab reserves the path segment "-", so the first "/-/" ends the project's path."""
    head, dash, _ = issue_web_url.partition("/-/")
    return head if dash else issue_web_url.rsplit("/issues/", 1)[0]


def absolute_uploads(text: str, project_url: str | None) -> str:
    """`text` (read from GitLab) with its project-relative upload links made absolute."""
    if not project_url or not text:
        return text
    return _RELATIVE.sub(lambda m: f"{m.group(1)}{project_url}/uploads/", text)


def relative_uploads(text: str, project_url: str | None) -> str:
    """`text` (to write to GitLab) with links to the project's uploads made project-relative
    again: the inverse of absolute_uploads. Links to other projects' uploads stay absolute."""
    if not project_url or not text:
        return text
    absolute = re.compile(_TARGET + re.escape(project_url.rstrip("/")) + r"/uploads/(?=[0-9a-f]{32}/)")
    return absolute.sub(lambda m: f"{m.group(1)}/uploads/", text)
