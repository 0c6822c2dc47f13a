"""A window of order dates cut into slices read side by side (flows.rebate_data)."""
import datetime as dt
from itertools import pairwise

import pytest

from flows.rebate_data import Window, _date_slices


@pytest.mark.parametrize("start,end,parts", [
    (dt.date(2026, 7, 1), dt.date(2026, 9, 30), 2),
    (dt.date(2026, 7, 1), dt.date(2026, 9, 30), 3),
    (dt.date(2026, 2, 1), dt.date(2026, 2, 28), 5),
    (dt.date(2026, 9, 30), dt.date(2026, 9, 30), 2),  # one day: one slice
    (dt.date(2026, 9, 29), dt.date(2026, 9, 30), 4),  # more parts than days
    (dt.date(2026, 9, 1), dt.date(2026, 9, 30), 1),
])
def test_slices_cover_the_window_once_in_order(start, end, parts):
    ids = frozenset({3, 7})
    slices = _date_slices(Window(start, end, ids), parts)
    assert len(slices) == min(parts, (end - start).days + 1)
    assert slices[0].start == start and slices[-1].end == end
    for a, b in pairwise(slices):
        assert b.start == a.end + dt.timedelta(days=1)
    assert all(s.start <= s.end and s.customer_ids == ids for s in slices)
    sizes = [(s.end - s.start).days + 1 for s in slices]
    assert max(sizes) - min(sizes) <= 1  # about even
