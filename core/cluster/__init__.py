"""Builds and probe fits on a Ray cluster (``python -m core build ... --ray``).

``session``: connect to a cluster (or start a local one in-process). ``worker``: the
actor that holds one model replica and computes planned batches. ``pool``: serves a
build's batches to those actors and hands the rows back to ``core.extract.store``,
which writes them as in a single-process build. ``probes``: one Ray task per layer for
the ridge sweep; ``sharded``: the covariance route (XᵀX summed over row shards) for a
layer whose rows do not fit one node. Ray is imported inside functions only, so the
rest of the library never needs it.
"""
