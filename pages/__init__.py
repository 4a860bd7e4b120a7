"""Dashboard pages (run through dashboard.py's st.navigation) and their shared glue:
_state (view state and URL sync), _loaders (cached loads) and _widgets (shared widgets)."""
