"""``bridge usage``: messages, tokens and estimated cost from the store's ``usage`` rows, as a table."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from bridge.policy.config import Price
from bridge.store.feedback import FeedbackLine
from bridge.store.usage import GroupBy, ReportLine

_SINCE = re.compile(r"^(\d+)\s*([hdw])$")
_UNIT_S = {"h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """``7d``, ``24h``, ``2w`` (ago) or a date ``2026-01-31`` (UTC) → a Unix time."""
    now = time.time() if now is None else now
    m = _SINCE.match(text.strip().lower())
    if m:
        return now - int(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: write a span like 7d, 24h, 2w, or a date like 2026-01-31") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


@dataclass
class _Row:
    messages: int = 0
    prompt: int = 0
    completion: int = 0
    cost: float = 0.0
    unpriced: bool = False

    def add(self, line: ReportLine, price: Price | None) -> None:
        t = line.totals
        self.messages += t.messages
        self.prompt += t.prompt_tokens
        self.completion += t.completion_tokens
        if price is None:
            self.unpriced = self.unpriced or t.tokens > 0
        else:
            self.cost += (t.prompt_tokens * price.prompt + t.completion_tokens * price.completion) / 1_000_000


def _key(line: ReportLine, by: GroupBy) -> str:
    if by == "day":
        return dt.datetime.fromtimestamp(int(line.key) * 86400, dt.UTC).strftime("%Y-%m-%d")
    return line.key


def _cost(row: _Row, priced: bool) -> str:
    if not priced:
        return "-"
    return f"{row.cost:.4f}" + ("*" if row.unpriced else "")


def render(lines: list[ReportLine], by: GroupBy, prices: Mapping[str, Price], since: float) -> str:
    """The table ``bridge usage`` prints: one row per key, the busiest first (days in order), a total."""
    rows: dict[str, _Row] = {}
    total = _Row()
    for line in lines:
        price = prices.get(line.model)
        rows.setdefault(_key(line, by), _Row()).add(line, price)
        total.add(line, price)
    order = sorted(rows) if by == "day" else sorted(rows, key=lambda k: (-(rows[k].prompt + rows[k].completion), k))
    priced = bool(prices)
    table: list[tuple[str, ...]] = [(by, "messages", "prompt", "completion", "cost (USD)")]
    for key in order:
        r = rows[key]
        table.append((key, str(r.messages), str(r.prompt), str(r.completion), _cost(r, priced)))
    table.append(("total", str(total.messages), str(total.prompt), str(total.completion), _cost(total, priced)))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    start = dt.datetime.fromtimestamp(since, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"usage since {start}, by {by}"]
    for row in table:
        out.append("  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                                     strict=True))]).rstrip())
    if not priced:
        out.append("(cost: set llm.prices: {MODEL: {prompt: USD, completion: USD}} per million tokens)")
    elif total.unpriced:
        out.append("* some tokens are of a model without an llm.prices entry: not counted in the cost")
    return "\n".join(out)


def render_feedback(lines: list[FeedbackLine], since: float) -> str:
    """``bridge usage --by feedback``: 👍 and 👎 per persona (one per person per answer), and a total."""
    table: list[tuple[str, ...]] = [("persona", "up", "down", "up share")]
    up = down = 0
    for line in lines:
        table.append((line.persona, str(line.up), str(line.down), _share(line.up, line.down)))
        up, down = up + line.up, down + line.down
    table.append(("total", str(up), str(down), _share(up, down)))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    start = dt.datetime.fromtimestamp(since, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"feedback since {start}, by persona (👍 up, 👎 down)"]
    for row in table:
        out.append("  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                                     strict=True))]).rstrip())
    if not lines:
        out.append("(no ratings yet: set platforms.slack.feedback: true to show the buttons)")
    return "\n".join(out)


def _share(up: int, down: int) -> str:
    return f"{100 * up / (up + down):.0f}%" if up + down else "-"
