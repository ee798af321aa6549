"""From files to training tensors: manifests, dataset adapters, clip sampling, reading clips, pretext
views, augmentations, log-mel features, the map-style dataset, each method's sample recipe, and the
synthetic demo world. Never imports avssl.methods."""
