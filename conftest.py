"""Nothing to load here: the suite is a pytest plugin (entry point `veza_synthetics`, see plugin.py),
so its options, markers and fixtures exist wherever the package is installed."""
