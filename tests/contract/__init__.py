"""Contract suites: one abstract suite per port, run against every adapter of that port."""
