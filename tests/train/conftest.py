"""The training tests' fixtures, defined in train_support."""

from train_support import labelled_manifest, manifest, tiny_config, uninterrupted, videos  # noqa: F401
