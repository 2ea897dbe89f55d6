"""A fifth head and its tab, written the way docs/architecture.md says (test_plugins.py)."""
