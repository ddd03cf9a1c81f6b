"""Helpers that run real servers (by PID) for the test suites."""
