import subprocess
import sys


def test_api_functions_and_stage_packages_do_not_shadow_each_other():
    code = ("import lorakit.training.loop as loop, lorakit.evaluation.report as report, lorakit.infer.predictor\n"
            "import lorakit\n"
            "assert callable(lorakit.train) and callable(lorakit.evaluate) and callable(lorakit.load)\n"
            "from lorakit import train, evaluate\n"
            "assert train.__module__ == evaluate.__module__ == 'lorakit'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
