import numpy as np

from hm_pipeline.arrays import positions


def test_positions_find_each_value_or_say_it_is_absent() -> None:
    ids = np.array([3, 7, 10])
    # present, present, past the end, before the start, last, between two ids
    pos, found = positions(ids, np.array([7, 3, 11, 0, 10, 8]))
    assert found.tolist() == [True, True, False, False, True, False]
    assert pos.tolist() == [1, 0, 0, 0, 2, 0]  # absent values index row 0, never a neighbour's
    pos, found = positions(np.array([], np.int64), np.array([1, 2]))
    assert found.tolist() == [False, False] and pos.tolist() == [0, 0]
    pos, found = positions(ids, np.array([], np.int64))
    assert len(pos) == len(found) == 0
