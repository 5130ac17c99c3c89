"""The pytest plugin: fixtures for satcore plugin tests."""
