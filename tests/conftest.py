"""Shared fixtures come from the plugin modules below, one per area."""

pytest_plugins = [
    "tests.fixtures.services",
]
