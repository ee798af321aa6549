"""The pretraining engine: Lightning trainer, resumable data loading, checkpoints and their format, run files."""
