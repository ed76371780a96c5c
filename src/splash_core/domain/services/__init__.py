"""Domain services: moving, verifying, pruning, ingesting, archiving and running jobs, over ports only."""
