"""One tiny trained run shared by the inference tests (training it takes a few seconds)."""

from pathlib import Path

import pytest

from helpers import make_tiny_model, synthetic_rows, tiny_overrides, write_csv


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    from lorakit.training.loop import train

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        root = tmp_path_factory.mktemp("infer")
        base = make_tiny_model(root / "tiny-bert")
        csv_path = write_csv(root / "rows.csv", synthetic_rows(600))
        m = train(overrides=tiny_overrides(root / "runs", csv_path, base), show_progress=False)
        return Path(m["run"])
