"""Losses as pure functions on tensors (InfoNCE variants, the AVTS margin loss, pretext cross-entropy) and
the feature queue; plain torch, no training loop, no I/O."""
