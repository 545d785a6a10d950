import subprocess
import sys


def test_api_functions_survive_imports_of_the_stage_packages():
    code = ("import lorakit.train.loop, lorakit.evaluate.report, lorakit.infer.predictor\n"
            "import lorakit\n"
            "assert callable(lorakit.train) and callable(lorakit.evaluate) and callable(lorakit.load)\n"
            "from lorakit import train, evaluate\n"
            "assert train.__module__ == evaluate.__module__ == 'lorakit'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
