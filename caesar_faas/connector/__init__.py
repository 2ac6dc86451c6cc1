"""The event connector (ARCHITECTURE §5): JetStream pull consumers -> HTTP function calls."""
