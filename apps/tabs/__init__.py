"""One module per tab; each registers itself with :func:`apps.ui.register_tab`."""
