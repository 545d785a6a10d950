"""Two commits of lorakit side by side: the training, prediction and serving benchmarks run
alternately from a checkout of each, on the same machine in one sitting. For a change that must not
change speed (a restructuring): each benchmark's own ratio (lorakit / its plain-library reference,
measured in the same run) is compared between the two commits.

    git worktree add /tmp/lorakit-before COMMIT
    python benchmarks/side_by_side.py --before /tmp/lorakit-before --rounds 2

Each checkout runs its own benchmark scripts against its own src/ (PYTHONPATH), in the same
virtualenv; rounds alternate which commit goes first.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, ROOT, command, write_result  # noqa: E402

# benchmark -> (arguments, the ratios it prints that the comparison reads)
BENCHES = {
    "train_throughput": ([], ["speedup"]),
    "predict_throughput": (["--work", "{work}"], ["ratio"]),
    "serve_throughput": (["--work", "{work}"], ["ratio_b_over_a", "ratio_b_over_c"]),
}


def run(tree: Path, bench: str, work: Path) -> dict:
    args = [a.format(work=work) for a in BENCHES[bench][0]]
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    out = subprocess.run([sys.executable, str(tree / "benchmarks" / f"{bench}.py"), *args], cwd=tree, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{bench} in {tree.name} failed:\n{out.stderr[-3000:]}")
    try:
        return last_json(out.stdout)
    except ValueError:  # a script that prints only a line of figures: its result file has them
        return json.loads((tree / "benchmarks" / "results" / f"{bench}.json").read_text())


def last_json(stdout: str) -> dict:
    """The summary: the last JSON object a benchmark prints, on one line or indented over several (some
    scripts print a "written:" line after it)."""
    lines = stdout.splitlines()
    decoder = json.JSONDecoder()
    for i in reversed(range(len(lines))):
        if lines[i].startswith("{"):
            try:
                return decoder.raw_decode("\n".join(lines[i:]))[0]
            except json.JSONDecodeError:
                continue  # an inner line of an indented object
    raise ValueError("no JSON object in the benchmark's output")


def commit(tree: Path) -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True).stdout.strip()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--before", required=True, help="a checkout of the commit to compare with (git worktree add)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--only", nargs="*", choices=list(BENCHES), help="some benchmarks only")
    a = p.parse_args()
    trees = {"before": Path(a.before).resolve(), "after": ROOT}
    scratch = Path(tempfile.gettempdir()) / "lorakit-side-by-side"
    runs = {b: {"before": [], "after": []} for b in (a.only or BENCHES)}
    for r in range(a.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for bench in runs:
            for side in order:
                got = run(trees[side], bench, scratch / side)
                runs[bench][side].append({k: got[k] for k in BENCHES[bench][1]})
                print(bench, side, runs[bench][side][-1], flush=True)
    commits = {side: commit(tree) for side, tree in trees.items()}
    # benchmarks not run this time keep their earlier entry (each entry names its own commits and rounds)
    earlier = RESULTS / "side_by_side.json"
    benchmarks = json.loads(earlier.read_text()).get("benchmarks", {}) if a.only and earlier.exists() else {}
    for bench, sides in runs.items():
        benchmarks[bench] = {"commits": commits, "rounds": a.rounds, "command": command()}
        for key in BENCHES[bench][1]:
            before = statistics.mean(x[key] for x in sides["before"])
            after = statistics.mean(x[key] for x in sides["after"])
            benchmarks[bench][key] = {"before": [x[key] for x in sides["before"]],
                                      "after": [x[key] for x in sides["after"]],
                                      "after_over_before": after / before}
    write_result("side_by_side", {"benchmarks": benchmarks})
    result = {"benchmarks": benchmarks}
    print(json.dumps(result["benchmarks"], indent=1))


if __name__ == "__main__":
    main()
