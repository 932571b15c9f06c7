"""Test-only pieces for the API double: the pytest fixture plugin and captured samples."""
