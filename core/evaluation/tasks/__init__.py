"""One module per task; each registers itself in :data:`core.evaluation.TASKS`."""
