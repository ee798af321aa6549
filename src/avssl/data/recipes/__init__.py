"""How each method's training sample is built from files: one module per method, called in loader workers.

A recipe picks the windows (avssl.data.sampling), reads them (avssl.data.clip_io) and builds the views
and labels its method trains on; it also says which sampler orders the epoch and how long a file must
be. The method (avssl.methods) names its recipe class and never reads files itself.
"""
