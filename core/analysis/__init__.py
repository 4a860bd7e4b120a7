"""Research analyses on cached activations: controls, block hold-out, prompt transfer,
MLP probes and space/time neurons (pure functions on arrays; no streamlit).

``core.analysis.run`` ties them to an activation cache and writes the ``analysis``
artifact that the dashboard's Research page reads.
"""
