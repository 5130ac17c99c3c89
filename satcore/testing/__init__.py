"""Test helpers for plugin authors: fixtures and contract tests (a pytest plugin, entry point ``pytest11``)."""
