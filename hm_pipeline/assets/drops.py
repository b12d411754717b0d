"""Weekly drops of transactions, appended to the transactions table one file at a time.

Each drop file under `raw/drops/` is a partition of `transaction_drops` (dynamic partitions,
added by the new-data sensor). Its rows are validated like transactions_train.csv's, and may only
hold the week after the data's last day: history is never rewritten. The IO manager reads the
`transactions` table as the ingested file followed by every appended drop.
"""

from pathlib import Path

import dagster as dg
import polars as pl

from hm_pipeline import drops, ingest
from hm_pipeline.assets.raw import CHECK, _rejects_meta, share_check
from hm_pipeline.resources import RawFiles

GROUP = "drops"
drop_partitions = dg.DynamicPartitionsDefinition(name="transaction_drops")


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=drop_partitions,
    outs={
        "transaction_drops": dg.AssetOut(
            description="One weekly drop of transactions, typed; the transactions table is "
            "the ingested file followed by these, in name order"
        ),
        "transaction_drops_rejects": dg.AssetOut(
            description="Rows of a drop set aside, with file, line, rule and reason"
        ),
    },
    ins={"customer_ids": dg.AssetIn(), "articles": dg.AssetIn()},
    check_specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset="transaction_drops",
            blocking=True,
            description="Rows set aside from the drop stay under RawFiles.max_reject_share.",
        )
    ],
)
def transaction_drops(
    context: dg.AssetExecutionContext,
    raw_files: RawFiles,
    customer_ids: pl.LazyFrame,
    articles: pl.LazyFrame,
):
    """Validate one drop against the week after the data's last day and append it."""
    name = context.partition_key
    raw = Path(raw_files.raw_dir)
    path = drops.drop_path(raw, name)
    window = drops.window_for(raw, name)
    r = ingest.ingest_transactions(
        path,
        customer_ids,
        articles.select("article_id"),
        ingest.Calendar(window.first, window.last),
    )
    table = r.table.collect(engine="streaming")
    rejects = r.rejects.collect(engine="streaming")
    check = share_check(
        "transaction_drops", table.height, rejects.height, raw_files.max_reject_share
    )
    last_day = table["t_dat"].max() if table.height else None
    meta = _rejects_meta(rejects) | {
        "window": f"{window.first} .. {window.last}",
        "first_day": str(table["t_dat"].min()) if table.height else "none",
        "last_day": str(last_day) if last_day else "none",
    }
    yield dg.Output(table, "transaction_drops", metadata=meta)
    yield dg.Output(rejects, "transaction_drops_rejects")
    yield check
    if check.passed:  # the calendar grows only with a drop that passed its check
        state = drops.record_drop(raw, name, window, last_day, table.height)
        context.log.info(
            f"{name}: {table.height:,} rows appended; data now ends {state['last_day']}"
        )
    else:
        context.log.error(
            f"{name}: {rejects.height:,} of {table.height + rejects.height:,} rows set aside "
            f"(limit {raw_files.max_reject_share:.1%}); the calendar does not grow"
        )
