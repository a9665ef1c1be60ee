"""Small discrete logarithms: from a decrypted tally point ``g^m`` back to the count ``m``.

Baby-step giant-step: a table of ``g^0 .. g^{s-1}`` (``s = ⌈√(max+1)⌉``), then at most ``s``
giant steps of ``g^-s``. Each step is one point addition (~21 µs), so ``max_value = 10**6``
costs a table of 1,001 points, built once per size and cached, and at most ~1,000 additions per
solve. Tables for at most ``_CACHED_TABLES`` sizes are kept.
"""

from __future__ import annotations

import math
from functools import lru_cache

from civicledger.errors import CivicError
from civicledger.services.voting import group
from civicledger.services.voting.group import IDENTITY, GroupError, Point

__all__ = ["MAX_VALUE", "DlogError", "solve"]

MAX_VALUE = 2**32
"""The largest count ``solve`` accepts: a table of 65,537 points, about 1.5 s to build."""

_CACHED_TABLES = 4


class DlogError(CivicError):
    """The point is not ``g^m`` for any ``m`` in the range asked (``result_out_of_range``)."""

    reason = "result_out_of_range"


@lru_cache(maxsize=_CACHED_TABLES)
def _baby_steps(size: int) -> dict[Point, int]:
    table: dict[Point, int] = {}
    p = IDENTITY
    for i in range(size):
        table[p] = i
        p = group.add(p, group.G)
    return table


def solve(m_point: Point, max_value: int) -> int:
    """The ``m`` in ``[0, max_value]`` with ``g^m = m_point``; raises ``DlogError`` if none."""
    if type(max_value) is not int or not 0 <= max_value <= MAX_VALUE:
        raise ValueError(f"max_value must be in [0, {MAX_VALUE}]")
    if m_point != IDENTITY and not group.is_valid(m_point):
        raise GroupError("not an element of the prime-order group")
    size = math.isqrt(max_value) + 1
    table = _baby_steps(size)
    giant = group.neg(group.base_mul(size))
    p = m_point
    for step in range(size + 1):
        i = table.get(p)
        if i is not None:
            m = step * size + i
            if m <= max_value:
                return m
            break
        p = group.add(p, giant)
    raise DlogError(f"the point is not g^m for any m in [0, {max_value}]")
