"""The package layers (store -> data -> model -> tasks -> config -> training | infer -> evaluation ->
serve | export -> cli) are a contract: nothing imports upwards, siblings stay apart (.importlinter)."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_layers_contract_holds():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a test dependency: pip install -e '.[test]'"
    r = subprocess.run([exe, "--config", str(ROOT / ".importlinter"), "--no-cache"], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 kept, 0 broken" in r.stdout


def test_the_contract_catches_an_upward_import(tmp_path):
    """The check is real: a store module importing the training loop breaks it."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "lorakit", src / "lorakit", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "lorakit" / "store" / "upward.py").write_text("from lorakit.training import loop  # noqa: F401\n")
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    r = subprocess.run([exe, "--config", str(ROOT / ".importlinter"), "--no-cache"], capture_output=True, text=True,
                       cwd=tmp_path, env={"PYTHONPATH": str(src), "PATH": str(Path(sys.executable).parent)}, timeout=300)
    assert r.returncode != 0 and "lorakit.store.upward -> lorakit.training.loop" in r.stdout
