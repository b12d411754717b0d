"""Article embeddings (text, image, metadata, co-purchase) and what they share: one table
layout, unit-norm vectors, nearest-neighbour sanity figures."""
