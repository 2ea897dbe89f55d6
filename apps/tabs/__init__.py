"""One module per tab; each registers itself with :func:`embedsuite.app.ui.register_tab`."""
