"""Benchmarks behind `avssl bench`: decoding, the data loader against its decode floor, training steps.
Each prints one JSON object."""
