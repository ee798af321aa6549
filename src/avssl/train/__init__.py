"""The pretraining engine: Lightning trainer, resumable data loading, atomic checkpoints, run files."""
