# The plugin and the fixtures: all logic lives in veza_synthetics (see plugin.py).
pytest_plugins = ["veza_synthetics.plugin"]
