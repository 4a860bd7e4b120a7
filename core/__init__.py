"""Spacetime Lens core library: datasets, activations, probes, metrics and figures.

Nothing in this package imports streamlit; the dashboard pages call into it.
"""

__version__ = "0.1.0"
