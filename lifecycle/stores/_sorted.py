"""A sorted set of keys in buckets: O(log n) add and remove, and a walk from any key.

The standard library has no sorted container, and ``bisect.insort`` into one
list moves every later item on each insert (a million-item list moves
megabytes per save). Here the keys live in buckets of at most ``2 * LOAD``
sorted items, found through the list of each bucket's largest key, so an add
or a remove costs one bisect over the buckets, one bisect and a small move
inside one bucket. A walk starts at a key in the same time and then yields
neighbours one by one, so a List page costs the same at 1,000 or 1,000,000
experiments. The layout is the one ``sortedcontainers.SortedList`` uses.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["SortedKeys"]


class _Comparable(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


K = TypeVar("K", bound=_Comparable)

_LOAD = 500


class SortedKeys(Generic[K]):
    """Distinct keys, kept sorted. Not thread-safe: the store holds its lock around it."""

    __slots__ = ("_len", "_lists", "_maxes")

    def __init__(self) -> None:
        self._lists: list[list[K]] = []
        self._maxes: list[K] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def add(self, key: K) -> None:
        lists, maxes = self._lists, self._maxes
        if not maxes:
            lists.append([key])
            maxes.append(key)
            self._len = 1
            return
        i = bisect_left(maxes, key)
        if i == len(maxes):  # past every key: append to the last bucket
            i -= 1
            lists[i].append(key)
            maxes[i] = key
        else:
            insort(lists[i], key)
        self._len += 1
        bucket = lists[i]
        if len(bucket) > 2 * _LOAD:  # split in two halves
            half = bucket[_LOAD:]
            del bucket[_LOAD:]
            maxes[i] = bucket[-1]
            lists.insert(i + 1, half)
            maxes.insert(i + 1, half[-1])

    def discard(self, key: K) -> None:
        maxes = self._maxes
        i = bisect_left(maxes, key)
        if i == len(maxes):
            return
        bucket = self._lists[i]
        j = bisect_left(bucket, key)
        if j == len(bucket) or key < bucket[j]:
            return
        del bucket[j]
        self._len -= 1
        if not bucket:
            del self._lists[i]
            del maxes[i]
        elif j == len(bucket):
            maxes[i] = bucket[-1]

    def walk(
        self, start: K | None = None, *, descending: bool = False, inclusive: bool = False
    ) -> Iterator[K]:
        """The keys past ``start`` in the walk's direction (all of them when ``start`` is None).

        Ascending yields keys ``> start`` (``>=`` when ``inclusive``);
        descending yields keys ``< start`` (``<=`` when ``inclusive``).
        Do not change the set while walking it.
        """
        lists, maxes = self._lists, self._maxes
        if not maxes:
            return
        if not descending:
            if start is None:
                i, j = 0, 0
            else:
                i = bisect_left(maxes, start)
                if i == len(maxes):
                    return
                bucket = lists[i]
                j = bisect_left(bucket, start) if inclusive else bisect_right(bucket, start)
            while i < len(lists):
                bucket = lists[i]
                while j < len(bucket):
                    yield bucket[j]
                    j += 1
                i += 1
                j = 0
            return
        if start is None:
            i = len(lists) - 1
            j = len(lists[i]) - 1
        else:
            i = bisect_left(maxes, start)
            if i == len(maxes):
                i -= 1
            bucket = lists[i]
            j = (bisect_right(bucket, start) if inclusive else bisect_left(bucket, start)) - 1
        while i >= 0:
            bucket = lists[i]
            while j >= 0:
                yield bucket[j]
                j -= 1
            i -= 1
            if i >= 0:
                j = len(lists[i]) - 1
