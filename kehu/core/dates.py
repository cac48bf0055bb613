"""Calendar months as the reports and stored figures count them."""

from __future__ import annotations

import datetime


def month_start(day: datetime.date, months_back: int = 0) -> datetime.date:
    """First day of the month ``months_back`` months before ``day``'s (negative: after)."""
    index = day.year * 12 + day.month - 1 - months_back
    return datetime.date(index // 12, index % 12 + 1, 1)


def month_end(day: datetime.date) -> datetime.date:
    return month_start(day, -1) - datetime.timedelta(days=1)
