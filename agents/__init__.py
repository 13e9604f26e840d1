"""Example agents that users copy (imported by tests through pytest's pythonpath; not installed)."""
