"""The suite's scheduler (tests/parallel.py): the order groups go out in, and one waiting group at a time."""

from __future__ import annotations

from tests.parallel import DEFAULT_TEST_SECONDS, longest_first, next_group


def test_groups_go_out_longest_first_and_an_unmeasured_one_by_its_number_of_tests():
    sizes = {"unit-a": 40, "gate": 1, "faults": 10, "new-module": 30, "unit-b": 4}
    measured = {"unit-a": 3.0, "gate": 200.0, "faults": 280.0, "unit-b": 3.0}
    assert DEFAULT_TEST_SECONDS * 30 > 3.0  # the new module's estimate lies between the measured ones
    assert longest_first(sizes, measured) == ["faults", "gate", "new-module", "unit-a", "unit-b"]


def test_with_nothing_measured_the_groups_go_out_by_their_number_of_tests():
    assert longest_first({"small": 2, "large": 50, "middle": 9}, {}) == ["large", "middle", "small"]


def test_beside_a_waiting_group_the_next_one_uses_the_cpu():
    queued = ["webhooks", "notifier", "speaker-labels", "unit"]
    waits = {"webhooks", "notifier"}
    assert next_group(queued, waits, waiting_group_out=False) == "webhooks"
    assert next_group(queued, waits, waiting_group_out=True) == "speaker-labels"


def test_when_only_waiting_groups_are_left_they_go_out_in_turn():
    assert next_group(["webhooks", "notifier"], {"webhooks", "notifier"}, waiting_group_out=True) == "webhooks"
