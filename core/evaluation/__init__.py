"""The evaluation harness: how each encoder transfers across the task heads (MTEB-style)."""

from __future__ import annotations

from embedsuite.evaluation.harness import (
    TASKS,
    Task,
    TaskContext,
    get_tasks,
    make_record,
    run_evaluation,
    write_markdown,
)

__all__ = [
    "TASKS",
    "Task",
    "TaskContext",
    "get_tasks",
    "make_record",
    "run_evaluation",
    "write_markdown",
]
