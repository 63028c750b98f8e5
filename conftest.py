# The suite's pytest plugin: collects cases/**/*.yaml and runs them against the
# target chosen with --target (default: the Linux stack in a lab namespace).
pytest_plugins = ["conformance.plugin"]
