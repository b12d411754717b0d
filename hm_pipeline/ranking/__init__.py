"""Second stage: the union of every source's candidates, one feature table, two rankers."""
