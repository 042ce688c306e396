"""QNAME minimisation (RFC 9156): which name to show a zone's servers on the way down to a qname.

A server above the zone of the name only needs to see enough labels to say where the next zone
cut is; the full name (and its type) goes only to the servers of the zone that turns out to hold
it. The walk itself (referrals, fallbacks, caching) lives in `resolution.py`; this module only
answers "how many labels next", so the schedule can be tested on its own.
"""

from __future__ import annotations

import functools

import dns.name


@functools.lru_cache(maxsize=256)  # asked for every name: a few lengths, the same settings
def label_schedule(labels: int, max_count: int, one_label: int) -> tuple[int, ...]:
    """How many labels of a `labels`-label name each minimised step reveals, ending with all.

    RFC 9156 section 2.3: a name with many labels (reverse-mapping names have 34) must not cost
    a query per label, so at most `max_count` steps are taken (MAX_MINIMISE_COUNT, 10). The first
    `one_label` steps (MINIMISE_ONE_LAB, 4) add one label each, because the top of the tree is
    where zone cuts are dense; the labels left are then spread evenly over the remaining steps,
    the larger steps last. A name with no more labels than `max_count` goes one label at a time.
    """
    if labels <= 0:
        return ()
    max_count = max(1, max_count)
    if labels <= max_count:
        return tuple(range(1, labels + 1))
    one_label = max(0, min(one_label, max_count - 1))
    head = list(range(1, one_label + 1))
    steps = max_count - one_label
    base, extra = divmod(labels - one_label, steps)
    at = one_label
    for index in range(steps):
        at += base + (1 if index >= steps - extra else 0)
        head.append(at)
    return tuple(head)


class Minimiser:
    """The names to ask on the way down to one qname, following a fixed label schedule.

    The schedule is counted from the root whatever the closest known zone cut is, so a cached
    delegation only skips steps and never adds any: the total number of minimised queries for a
    name stays within `max_count` however the walk goes.
    """

    __slots__ = ("_labels", "_schedule", "qname")

    def __init__(self, qname: dns.name.Name, max_count: int, one_label: int) -> None:
        self.qname = qname
        # Labels counted once, on the tuple: `len()` of a name is a Python call each time.
        self._labels = len(qname.labels)
        self._schedule = label_schedule(self._labels - 1, max_count, one_label)

    def next_name(self, known: dns.name.Name) -> dns.name.Name:
        """The next name to ask below `known` (the qname or one of its ancestors).

        It is the qname itself once no step of the schedule is left between the two.
        """
        have = len(known.labels) - 1
        for count in self._schedule:
            if count > have:
                break
        else:
            return self.qname
        if count >= self._labels - 1:  # the whole name: no new name to make
            return self.qname
        return self.qname.split(count + 1)[1]

    def is_qname(self, name: dns.name.Name) -> bool:
        """Whether `name`, the qname or one of its ancestors (given by `next_name`, or the apex
        of a zone above the qname), is the qname itself: the number of labels tells, and no
        name is compared (dnspython lower-cases every label of both, about a microsecond)."""
        return len(name.labels) == self._labels
