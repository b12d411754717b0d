"""The weekly schedule and the new-data sensor.

The sensor watches `$HM_DATA_DIR/raw/drops/`. For each new CSV file it adds a partition of
`transaction_drops` and requests the run that validates and appends it. Once a drop is appended
(the calendar state records it), it requests `weekly_pipeline` runs for the weeks the new rows
make stale (`drops.stale_weeks`) and then the reports. A week that exists only in the grown
calendar (the new prediction week) waits in the cursor until the code location reloads (the
UI's "Reload", or a restart), because partitions are fixed when the definitions load.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from hm_pipeline import drops
from hm_pipeline.assets.drops import drop_partitions
from hm_pipeline.resources import RawFiles
from hm_pipeline.settings import calendar_state
from hm_pipeline.weeks import Calendar

APPEND_JOB = "append_drop"
WEEKLY_JOB = "weekly_pipeline"
PREDICTION_JOB = "prediction"
REPORTS_JOB = "reports"


def plan(
    raw: Path, known_drops: set[str], partition_keys: list[str], cursor: dict
) -> tuple[list[str], list[str], bool, dict]:
    """What the sensor does on one tick, as data.

    Returns (drops to add and append, weeks to run now, whether to run the reports, new
    cursor). The cursor holds the drops whose stale weeks were already worked out and the weeks
    still waiting for the code location to know them."""
    new = [n for n in drops.list_drops(raw) if n not in known_drops]
    state = calendar_state(raw)
    grown = Calendar(last_day=date.fromisoformat(state["last_day"]))
    handled = set(cursor.get("handled", []))
    pending = set(cursor.get("pending", []))
    for name, record in sorted(state["drops"].items()):
        if name in handled:
            continue
        first_new_day = date.fromisoformat(record["after"]) + timedelta(days=1)
        pending |= {str(w) for w in drops.stale_weeks(first_new_day, grown.partition_weeks)}
        handled.add(name)
    known = set(partition_keys)
    ready = sorted(w for w in pending if w in known)
    waiting = sorted(pending - set(ready))
    reports = bool(ready) and not waiting
    return new, ready, reports, {"handled": sorted(handled), "pending": waiting}


def build_sensor(
    weekly_partitions: dg.PartitionsDefinition, jobs: list[dg.UnresolvedAssetJobDefinition]
) -> dg.SensorDefinition:
    """The new-data sensor over the weekly partitions the definitions were loaded with."""

    @dg.sensor(
        name="transaction_drop_sensor",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        jobs=jobs,
        description="Appends new weekly drops of transactions from raw/drops/ and re-runs the "
        "weeks they make stale.",
    )
    def transaction_drop_sensor(
        context: dg.SensorEvaluationContext, raw_files: RawFiles
    ) -> dg.SensorResult:
        raw = Path(raw_files.raw_dir)
        known = set(context.instance.get_dynamic_partitions(drop_partitions.name))
        cursor = json.loads(context.cursor) if context.cursor else {}
        keys = weekly_partitions.get_partition_keys(dynamic_partitions_store=context.instance)
        new, ready, reports, cursor = plan(raw, known, keys, cursor)
        last_day = calendar_state(raw)["last_day"]
        requests = [
            dg.RunRequest(run_key=f"append:{n}", job_name=APPEND_JOB, partition_key=n) for n in new
        ]
        requests += [
            dg.RunRequest(run_key=f"stale:{w}:{last_day}", job_name=WEEKLY_JOB, partition_key=w)
            for w in ready
        ]
        if reports:  # the new prediction week's shards, then the reports that gather them
            from hm_pipeline.ranking.shards import shard_keys

            requests += [
                dg.RunRequest(
                    run_key=f"predict:{s}:{last_day}", job_name=PREDICTION_JOB, partition_key=s
                )
                for s in shard_keys()
            ]
            requests.append(dg.RunRequest(run_key=f"reports:{last_day}", job_name=REPORTS_JOB))
        if cursor["pending"]:
            context.log.info(
                f"the data now ends {last_day}; weeks {cursor['pending']} are not in this code "
                "location's partitions yet: reload it and the next tick runs them"
            )
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[drop_partitions.build_add_request(new)] if new else [],
            cursor=json.dumps(cursor),
        )

    return transaction_drop_sensor
