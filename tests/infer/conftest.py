"""Fixtures of the inference tests."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def trained_run(trained_tiny_run) -> Path:
    """The session's tiny trained run (tests/conftest.py), read by the inference tests."""
    return trained_tiny_run
