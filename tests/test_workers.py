"""-n auto's worker count (conformance/plugin/workers.py), without a lab."""

from __future__ import annotations

from conformance.plugin.workers import LAB_MEMORY, auto_workers, available_memory


def test_three_workers_a_stack_between_four_and_twelve():
    assert [auto_workers(n, None) for n in (1, 2, 3, 4, 10)] == [4, 6, 9, 12, 12]


def test_no_more_workers_than_memory_holds_their_labs():
    assert auto_workers(4, 6 * 4 * LAB_MEMORY) == 6
    assert auto_workers(4, 0) == 4          # never below the floor: a sweep must run


def test_the_machines_available_memory_is_read():
    assert available_memory() > 0
