"""Dashboard pages (run through dashboard.py's st.navigation) and their shared glue, _ui."""
