"""Benchmark of the rich-text conversions (printed, not asserted).

Reproduce with:  .venv/bin/python tests/bench/bench_richtext.py

For each public conversion of appliance.richtext and a handful of texts shaped like what a sync moves
(a short comment, a typical description with a list and emphasis, a long description with headings, a
code block, a table, links and mentions), prints microseconds per call, and, measured in the same run,
json.dumps + json.loads of the same text as a yardstick of the machine's speed, with the ratio of the
two: the ratio is what to compare between machines.
"""

from __future__ import annotations

import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance import richtext  # noqa: E402
from appliance.richtext.model import canonical_href  # noqa: E402

COMMAND = ".venv/bin/python tests/bench/bench_richtext.py"

SHORT_WIKI = "Comment 0 on item 7"
TYPICAL_WIKI = "Steps to reproduce item 7:\n\n* open the app\n* press *save*"
LONG_WIKI = """h1. Checkout fails for guest users

Since build *4.2.1* the checkout page returns an error for _guest_ users. Reported by [~alice], see
[the support ticket|https://support.example.com/tickets/4711] and [https://status.example.com].

h2. Steps to reproduce

# open the shop as a guest
# add any item to the cart
## pick the {{express}} shipping option
# press *Pay now*

h2. Logs

{code:python}
Traceback (most recent call last):
  File "checkout.py", line 42, in pay
    raise PaymentError(order.id)
{code}

h2. Affected browsers

||Browser||Version||Result||
|Firefox|121|fails|
|Chrome|120|works|

{quote}
The payment provider changed its API on Monday. -Old endpoint- is gone.
{quote}

----
[~bob.smith] please have a look before the release.
"""

SHORT_MD = SHORT_WIKI
TYPICAL_MD = "Steps to reproduce item 7:\n\n- open the app\n- press **save**"
LONG_MD = richtext.from_jira_wiki(LONG_WIKI)

TEXTS = {"short comment": (SHORT_WIKI, SHORT_MD), "typical": (TYPICAL_WIKI, TYPICAL_MD), "long": (LONG_WIKI, LONG_MD)}


def per_call_us(fn, arg) -> float:
    """Best of five runs of microseconds per call (the minimum is the least disturbed by other load)."""
    timer = timeit.Timer(lambda: fn(arg))
    number, _ = timer.autorange()
    return min(timer.repeat(5, number)) / number * 1e6


def conversion_us(fn, arg) -> float:
    """`per_call_us` with the link-normalisation cache emptied before every call, as for a text never
    seen before (calling one text over and over would otherwise only ever hit the cache).  The cost
    of emptying it is measured and taken off."""
    return per_call_us(lambda a: (canonical_href.cache_clear(), fn(a)), arg) - per_call_us(
        lambda a: (canonical_href.cache_clear(), a), arg
    )


def main() -> None:
    print(f"# {COMMAND}  (python {sys.version.split()[0]})")
    print(f"{'conversion':<16}{'text':<15}{'chars':>6}{'us/call':>10}{'json us':>9}{'ratio':>8}")
    for name, (wiki, md) in TEXTS.items():
        adf = richtext.to_adf(md)
        cases = [
            ("from_jira_wiki", richtext.from_jira_wiki, wiki),
            ("to_jira_wiki", richtext.to_jira_wiki, md),
            ("from_adf", richtext.from_adf, adf),
            ("to_adf", richtext.to_adf, md),
            ("normalise", richtext.normalise, md),
        ]
        for conv, fn, arg in cases:
            us = conversion_us(fn, arg)
            # The yardstick moves the same payload: the text, or the ADF document for from_adf.
            base = per_call_us(lambda a: json.loads(json.dumps(a)), arg)
            size = len(arg) if isinstance(arg, str) else len(json.dumps(arg))
            print(f"{conv:<16}{name:<15}{size:>6}{us:>10.1f}{base:>9.2f}{us / base:>8.1f}")


if __name__ == "__main__":
    main()
