"""HTML comments in GitLab Markdown (issue templates are full of them).

GitLab does not show them and Jira has nothing like them: canonical Markdown keeps them as written
(a description read from GitLab and written back is unchanged), the Jira converters drop them, and
nothing ever turns them into visible, escaped text.  Text that only looks like a comment where it
was visible (typed in Jira) stays visible text.
"""

from __future__ import annotations

import pytest

from appliance.richtext import from_adf, from_jira_wiki, normalise, to_adf, to_jira_wiki
from appliance.sync import mentions

from .test_richtext import CLOUD, SERVER, _assert_valid_adf

TEMPLATE = """<!-- Thanks for reporting a bug! Fill in the sections below. -->

## Summary

<!-- Summarize the bug encountered concisely. -->

## Steps to reproduce

<!--
Describe how one can reproduce the issue - this is very important.

- use an ordered list
- *one* step per item
-->

1. Open the page
2. Click **Save**

## Checklist

- [ ] I searched for duplicates <!-- required -->
- **Version**: 15.2 <!-- e.g. 15.2 -->"""

TEMPLATE_IN_JIRA = """h2. Summary

h2. Steps to reproduce

# Open the page
# Click *Save*

h2. Checklist

* \\[ \\] I searched for duplicates
* *Version*: 15.2"""

TEMPLATE_WITHOUT_COMMENTS = """## Summary

## Steps to reproduce

1. Open the page
2. Click **Save**

## Checklist

- [ ] I searched for duplicates
- **Version**: 15.2"""


def _through_jira(md: str, wiki: str, back: str) -> dict:
    """`md` reaches Jira Data Center as `wiki` and Cloud without comments, and comes back from
    either as `back`; returns the ADF."""
    assert to_jira_wiki(md, SERVER) == wiki
    assert from_jira_wiki(wiki, SERVER) == back
    doc = to_adf(md, CLOUD)
    _assert_valid_adf(doc)
    assert "<!--" not in str(doc)
    assert from_adf(doc, CLOUD) == back
    return doc


def test_an_issue_template_keeps_its_comments_in_gitlab_and_drops_them_in_jira():
    assert normalise(TEMPLATE) == TEMPLATE
    doc = _through_jira(TEMPLATE, TEMPLATE_IN_JIRA, TEMPLATE_WITHOUT_COMMENTS)
    assert to_adf(TEMPLATE_WITHOUT_COMMENTS, CLOUD) == doc


@pytest.mark.parametrize(
    ("md", "canonical"),
    [
        ("text <!-- a note --> more", "text <!-- a note --> more"),
        ("<!-- first -->\ntext", "<!-- first -->\n\ntext"),
        ("para\n<!-- after -->", "para\n\n<!-- after -->"),
        ("<!--\n\nspans *blank* lines\n\n-->", "<!--\n\nspans *blank* lines\n\n-->"),
        ("   <!-- indented -->   ", "<!-- indented -->"),
        ("# Title <!-- why -->", "# Title <!-- why -->"),
        ("| a <!-- c --> | b |\n| --- | --- |", "| a <!-- c --> | b |\n| --- | --- |"),
        ("> <!-- quoted -->\n>\n> text", "> <!-- quoted -->\n>\n> text"),
        ("- <!-- only a comment -->", "- <!-- only a comment -->"),
        ("- [ ] <!-- a task to fill in -->", "- [ ] <!-- a task to fill in -->"),
        ("text <!-- wrapped\nover lines --> more", "text <!-- wrapped over lines --> more"),
        ("`<!-- code -->` and\n\n```\n<!-- code -->\n```", "`<!-- code -->` and\n\n```\n<!-- code -->\n```"),
        ("@alice <!-- @bob.smith --> hi", "@alice <!-- @bob.smith --> hi"),
        # GitLab would read a line opening with a comment as raw HTML (its text unformatted, a
        # trailing "\" visible), so canonical Markdown never opens a line with one
        ("<!-- c --> text after", "text after <!-- c -->"),
        ("- **Version**:\n  <!-- e.g. 15.2 -->", "- **Version**: <!-- e.g. 15.2 -->"),
        ("- <!-- hint -->\n\n  item text", "- item text <!-- hint -->"),
        ("- a\n\n  <!-- c -->\n\n  b", "- a <!-- c -->\\\n  b"),
        # ... and, as there, a line opening with a comment ends the paragraph before it
        ("a\\\n<!-- c -->\\\nb", "a\\\\\n\nb <!-- c -->"),
        # Not comments: other raw HTML and a comment never closed stay literal text, as before
        ("<b>bold</b> <!-- c -->", "\\<b>bold\\</b> <!-- c -->"),
        ("<!-- never closed", "\\<!-- never closed"),
    ],
)
def test_normalise_keeps_comments_unescaped(md, canonical):
    assert normalise(md) == canonical
    assert normalise(canonical) == canonical


@pytest.mark.parametrize(
    ("md", "wiki", "back"),
    [
        ("text <!-- a note --> more", "text more", "text more"),
        ("text<!-- glued -->more", "textmore", "textmore"),
        ("- a\n\n<!-- between -->\n\n- b", "* a\n* b", "- a\n- b"),
        ("<!-- only a comment -->", "", ""),
        ("> <!-- quoted -->\n>\n> text", "{quote}\ntext\n{quote}", "> text"),
        ("| a <!-- c --> | b |\n| --- | --- |", "||a||b||", "| a | b |\n| --- | --- |"),
        ("- **Version**: <!-- e.g. 15.2 -->", "* *Version*:", "- **Version**:"),
    ],
)
def test_jira_gets_no_comments(md, wiki, back):
    _through_jira(md, wiki, back)


def test_comment_like_text_typed_in_jira_stays_visible():
    md = from_jira_wiki("use <!-- and --> to hide text", SERVER)
    assert md == "use \\<!-- and --> to hide text"
    assert from_jira_wiki(to_jira_wiki(md, SERVER), SERVER) == md
    doc = {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "<!-- shown in Jira -->"}]}]}
    assert from_adf(doc, CLOUD) == "\\<!-- shown in Jira -->"
    assert from_adf(to_adf(from_adf(doc, CLOUD), CLOUD), CLOUD) == "\\<!-- shown in Jira -->"


def test_mentions_inside_comments_are_not_mentions():
    md = "ask @alice <!-- not @bob.smith -->"
    assert mentions.mentioned(md) == {"alice"}
    assert mentions.translate(md, {"alice": "alice2"}.get) == "ask @alice2 <!-- not @bob.smith -->"
