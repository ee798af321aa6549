"""`avssl demo`: the whole job (demo world, probing, pretraining, features, evaluation, report) on the
embedded demo world. Orchestration above avssl.train and avssl.evaluate; nothing below imports it."""
