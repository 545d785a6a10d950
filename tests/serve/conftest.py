"""Fixtures of the serving tests: three tiny adapters over the same tiny base that disagree on purpose,
trained once per test session.

``plain`` learns the synthetic labels; ``flipped`` learns them with positive and negative swapped,
so a mixed batch shows at a glance whether each row went through its own adapter;
``binary`` has two labels, so it lives in a second pool of the engine.
"""

import pytest

from helpers import make_tiny_model
from serve_helpers import train_tiny


@pytest.fixture(scope="session")
def tiny_adapters(tmp_path_factory) -> dict:
    """{"base": folder, "plain": run, "flipped": run, "binary": run (2 labels)}."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        root = tmp_path_factory.mktemp("adapters")
        base = make_tiny_model(root / "tiny-bert")
        return {
            "base": base,
            "plain": train_tiny(root, base, "plain"),
            "flipped": train_tiny(root, base, "flipped", flip=True),
            "binary": train_tiny(root, base, "binary", two_labels=True),
        }
