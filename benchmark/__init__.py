"""The `benchmark` command, suites, runners, protocol and metrics."""
