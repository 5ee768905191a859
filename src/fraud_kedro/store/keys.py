"""History keys of customers and terminals: ``17`` and ``"17"`` are the same card."""

from __future__ import annotations

import re

_CANONICAL_INT = re.compile(r"-?[1-9][0-9]{0,18}|0")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def canonical_id(value: int | str) -> int | str:
    """The history key of a customer/terminal id: ``17`` and ``"17"`` are the same card.

    Integers, and strings that spell an int64 the canonical way, become ints; other strings stay.
    So ``str(key)`` round-trips: :func:`canonical_id` of it gives the key back (a text column of a
    server store holds ``str(key)``).
    """
    if isinstance(value, str) and _CANONICAL_INT.fullmatch(value):
        number = int(value)
        if _INT64_MIN <= number <= _INT64_MAX:
            return number
    return value
