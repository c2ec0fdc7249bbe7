"""Streamlit dashboard over LatentWire run folders (reads files only)."""
