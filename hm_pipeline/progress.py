"""A Dagster logger for the command line: one line per finished (or failed) step, as it
happens, instead of Dagster's debug stream."""

from __future__ import annotations

import logging
import re
import sys
import time

import dagster as dg

_STEP = re.compile(r'(STEP_SUCCESS|STEP_FAILURE) - .*?step "([^"]+)"(?: in ([^.]+(?:\.\d+)?\w*))?')


class _StepLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.t0 = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        m = _STEP.search(msg)
        if m:
            kind, step, took = m.groups()
            state = "done" if kind == "STEP_SUCCESS" else "FAILED"
            print(
                f"  [{time.monotonic() - self.t0:6.0f}s] {step:40s} {state} {took or ''}",
                file=sys.stdout,
                flush=True,
            )
        elif record.levelno >= logging.ERROR:
            print(f"  {msg}", file=sys.stderr, flush=True)


@dg.logger(description="One line per finished step (the hm-pipeline CLI's progress).")
def step_progress(_init_context) -> logging.Logger:
    """The logger: DEBUG records pass to the handler, which keeps only step ends and errors."""
    log = logging.getLogger("hm_pipeline.progress")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    if not log.handlers:
        log.addHandler(_StepLines())
    return log
