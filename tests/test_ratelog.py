"""engine.core.ratelog: log the first occurrence and every Nth."""

from engine.core.ratelog import first_and_every


def test_first_and_every_nth():
    assert [n for n in range(0, 3001) if first_and_every(n, 1000)] == [1, 1000, 2000, 3000]
    assert [n for n in range(0, 301) if first_and_every(n, 100)] == [1, 100, 200, 300]


def test_a_batch_that_jumps_over_a_multiple_still_logs():
    assert first_and_every(5, 1000, added=5)  # the first batch
    assert first_and_every(1003, 1000, added=6)  # 997 -> 1003 passes 1000
    assert not first_and_every(1009, 1000, added=6)  # 1003 -> 1009 passes nothing
    assert first_and_every(1000, 1000, added=3)  # lands on it
    assert not first_and_every(0, 1000, added=0)  # nothing counted yet
