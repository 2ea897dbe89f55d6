"""One module per task; each registers itself in :data:`embedsuite.evaluation.TASKS`."""
