"""Steps as tasks on a dask cluster: dagster-dask's executor, with its task arguments boxed.

dagster-dask 0.29 submits the run (a `DagsterRun` record), the known state and the other step
arguments to `Client.submit` as they are. dask (2024.12 and later) walks tuple arguments to find
nested tasks, and Dagster's records are named tuples that refuse iteration ("Iteration is not
allowed on `@record` ..."), so every partitioned run fails before a step starts. This executor
keeps dagster-dask's worker function and its resource tags and changes one thing: the step's
arguments travel in an opaque box that dask passes through untouched.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import dask.distributed
from dagster._core.errors import raise_execution_interrupts
from dagster._core.events import DagsterEvent
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._utils import iterate_with_context
from dagster_dask.executor import DaskExecutor, get_dask_resource_requirements, query_on_dask_worker


class _Box:
    """An argument dask must not look into."""

    def __init__(self, value: tuple) -> None:
        self.value = value


def _run_boxed(dependencies: list, box: _Box) -> list[DagsterEvent]:
    return list(query_on_dask_worker(dependencies, *box.value))


class BoxedDaskExecutor(DaskExecutor):
    """dagster-dask's executor for an existing scheduler or a local cluster."""

    def execute(self, plan_context, execution_plan: ExecutionPlan):
        if not plan_context.instance.is_persistent:
            raise dg.DagsterInvariantViolationError(
                "the dask executor needs a persistent instance (set DAGSTER_HOME)"
            )
        if self.cluster_type == "existing":
            cluster: Any = self.cluster_configuration["address"]
        elif self.cluster_type == "local":
            cluster = dask.distributed.LocalCluster(**self.build_dict(plan_context.job_name))
        else:
            raise ValueError(f"cluster type {self.cluster_type!r}: use 'existing' or 'local'")
        instance_ref = plan_context.instance.get_ref()
        with dask.distributed.Client(cluster) as client:
            futures, by_step = [], {}
            for level in execution_plan.get_steps_to_execute_by_level():
                for step in level:
                    deps = [by_step[key] for inp in step.step_inputs for key in inp.dependency_keys]
                    box = _Box(
                        (
                            plan_context.reconstructable_job,
                            plan_context.dagster_run,
                            plan_context.run_config,
                            [step.key],
                            instance_ref,
                            execution_plan.known_state,
                        )
                    )
                    future = client.submit(
                        _run_boxed,
                        deps,
                        box,
                        key=f"{plan_context.job_name}.{step.key}",
                        resources=get_dask_resource_requirements(step.tags),
                        pure=False,
                    )
                    futures.append(future)
                    by_step[step.key] = future
            done = dask.distributed.as_completed(futures, with_results=True)
            for _, events in iterate_with_context(raise_execution_interrupts, done):
                yield from events


@dg.executor(
    name="dask",
    config_schema={
        "cluster": dg.Field(
            dg.Selector(
                {
                    "existing": {"address": dg.Field(str, description="tcp://host:port")},
                    "local": dg.Field(
                        dg.Permissive(), description="LocalCluster keyword arguments"
                    ),
                }
            )
        )
    },
)
def dask_executor(init_context) -> BoxedDaskExecutor:
    """Steps on a dask cluster: `{"cluster": {"existing": {"address": ...}}}` or
    `{"cluster": {"local": {"n_workers": 2}}}`."""
    ((kind, config),) = init_context.executor_config["cluster"].items()
    return BoxedDaskExecutor(kind, config)
