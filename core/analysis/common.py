"""How the analyses score proximity error (its one definition: `core.probe.metrics`).

A build scores each split once; an analysis scores many more (every control and layer,
every held-out block and reference, every transfer pair), so it caps the O(n^2)
comparison lower than a build does (`MAX_PROXIMITY_ENTITIES`, 8,000 rows).
"""

from __future__ import annotations

# Above this many rows an analysis split's proximity error is scored on a seeded
# subsample of this many (`core.probe.metrics.proximity_error`'s `max_rows`).
MAX_PROXIMITY_ROWS = 4000
# The per-entity errors of the block hold-out rank a reference's own prediction against
# the probe's field: that dot product is computed apart from the field's, so an equal
# prediction may differ from it in the last bits; closer means closer by more than this
# (`core.probe.metrics.proximity_errors`' `tolerance`; space only).
PROXIMITY_TOLERANCE = 1e-12
