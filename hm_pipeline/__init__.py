"""hm-pipeline: fashion recommendations for H&M-format data as a Dagster asset graph."""
