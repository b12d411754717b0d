"""Small numpy helpers shared by the features, the sources and the models."""

from __future__ import annotations

import numpy as np


def positions(sorted_ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pos, found): where each value sits in `sorted_ids` (ascending, unique) and whether it is
    there at all. `pos` is 0 where a value is not found, so it always indexes safely; callers
    mask those rows with `found`, never read a neighbouring id's row."""
    values = np.asarray(values)
    if len(sorted_ids) == 0:
        return np.zeros(len(values), np.intp), np.zeros(len(values), bool)
    pos = np.clip(np.searchsorted(sorted_ids, values), 0, len(sorted_ids) - 1)
    found = sorted_ids[pos] == values
    return np.where(found, pos, 0), found
