"""Shared fixtures come from the plugin modules below, one per area."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.finders",
    "tests.fixtures.stack",
    "tests.fixtures.auth",
    "tests.fixtures.store",
    "tests.fixtures.storage",
    "tests.fixtures.k8s",
    "tests.fixtures.jobs",
    "tests.fixtures.runner",
    "tests.fixtures.client",
    "tests.fixtures.slurm",
    "tests.fixtures.receivers",
    "tests.fixtures.logscan",
]
