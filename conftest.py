# Hooks (options, sandbox, parametrization, reports) and fixtures; the logic lives in veza_synthetics.
pytest_plugins = ["veza_synthetics.plugin", "fixtures.suite"]
