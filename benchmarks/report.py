"""Render benchmarks/results/*.json as the README's results tables (between the results markers).

    python benchmarks/report.py

Refuses to write a block that holds an absolute path of this machine (a result recorded before
the benchmarks wrote paths relative to the repository root): fix that field in the JSON first.
"""

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_paths  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _x(v: float) -> str:
    return f"{v:.2f}×"


def render() -> str:
    out = []
    t = _load("train_throughput")
    if t:
        r, o = t["reference"], t["lorakit"]
        s = t["settings"]
        out += [f"**Training throughput** — `{t['command']}` ({s['examples']} tweets, minilm, LoRA r={s['r']}, "
                f"batch {s['batch_size']}, {s['threads']} threads, {t['machine']['cores']} cores, {t['date']})", "",
                "| | samples/s | val accuracy | peak RSS (MB) |", "|---|---|---|---|",
                f"| reference: {r['what']} | {r['samples_per_s']:.1f} | {r['val_accuracy']:.4f} | {r['peak_rss_mb']:.0f} |",
                f"| lorakit ({o.get('precision', 'fp32')}) | {o['samples_per_s']:.1f} | {o['val_accuracy']:.4f} | {o['peak_rss_mb']:.0f} |",
                f"| **ratio** | **{_x(t['speedup'])}** | {t['accuracy_delta']:+.4f} | {_x(t['peak_rss_ratio'])} |", "",
                f"lorakit reaches {o['achieved_gflops_real_tokens']:.1f} GFLOP/s on real tokens, "
                f"{100 * t['fraction_of_matmul_peak']:.1f}% of a 1024² fp32 matmul measured in the same run "
                f"({t['matmul_gflops']:.1f} GFLOP/s sustained over 2 s, the mean of just before and just after "
                "lorakit's run; FLOPs counted in `training_flops_per_token`)"
                + (f"; {100 * t['fraction_of_bf16_matmul_peak']:.0f}% of a bf16 one ({t['matmul_gflops_bf16']:.1f} GFLOP/s), "
                   f"the precision lorakit trained in here." if o.get("precision") == "bf16" else ".")
                + " The reference trains in fp32 (the Trainer's default).", ""]
    variants = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("train_throughput-*.json"))]
    if variants:
        out += ["The same benchmark against a reference given more `TrainingArguments` "
                "(`--reference-args`), each row its own side-by-side run:", "",
                "| reference `TrainingArguments` | reference samples/s | lorakit samples/s | ratio | accuracy | peak RSS |",
                "|---|---|---|---|---|---|"]
        out += [f"| `{json.dumps(v['reference']['training_args'])}` | {v['reference']['samples_per_s']:.1f} | "
                f"{v['lorakit']['samples_per_s']:.1f} | **{_x(v['speedup'])}** | {v['accuracy_delta']:+.4f} | "
                f"{_x(v['peak_rss_ratio'])} |" for v in variants]
        out.append("")
    d = _load("ddp_scaling")
    if d:
        out += [f"**Data-parallel scaling** — `{d['command']}` ({d['examples']} tweets, "
                f"{d['threads_per_process']} thread(s) per process)", "",
                "| processes | samples/s | val accuracy |", "|---|---|---|",
                f"| {d['one']['processes']} | {d['one']['samples_per_s']:.1f} | {d['one']['val_accuracy']:.4f} |",
                f"| {d['many']['processes']} | {d['many']['samples_per_s']:.1f} | {d['many']['val_accuracy']:.4f} |",
                "", f"speed-up {_x(d['speedup'])}, scaling efficiency {100 * d['efficiency']:.0f}%", ""]
    a = _load("accuracy")
    if a:
        out += ["**Accuracy on the held-out test split** (full training data, `python benchmarks/accuracy.py NAME`)", "",
                "| dataset | lorakit accuracy | macro-F1 | trainable | full fine-tuning | TF-IDF + linear SVM | "
                "TF-IDF + logistic regression |", "|---|---|---|---|---|---|---|"]
        for name, r in a["runs"].items():
            b, full = r["baselines"], r.get("full_finetune")
            full_acc = f"{full['test_accuracy']:.4f}" if full else "not run"
            out.append(f"| {name} ({r['train_examples']} train / {r['test_examples']} test) | {r['test_accuracy']:.4f} | "
                       f"{r['test_macro_f1']:.4f} | {r['trainable_percent']:.2f}% | "
                       f"{full_acc} | "
                       f"{b['tf-idf + linear SVM']['accuracy']:.4f} | {b['tf-idf + logistic regression']['accuracy']:.4f} |")
        out += ["", "Full fine-tuning: `python benchmarks/full_finetune.py NAME` (every weight, lr 5e-5, same split).", ""]
    b = _load("baseline_tfidf")
    if b:
        out += ["**Baselines** (`python benchmarks/baseline_tfidf.py`: fitted on train+validation, scored on the test split)", "",
                "| dataset | train examples | majority class | TF-IDF + logistic regression | TF-IDF + linear SVM |",
                "|---|---|---|---|---|"]
        for name, r in b["results"].items():
            out.append(f"| {name} | {r['train_examples']} | {r['majority class']['accuracy']:.4f} | "
                       f"{r['tf-idf + logistic regression']['accuracy']:.4f} | {r['tf-idf + linear SVM']['accuracy']:.4f} |")
        out.append("")
    i = _load("install")
    if i:
        out += [f"**Install** (`{i['command']}`, {i['source']})", "",
                "| | seconds | ratio |", "|---|---|---|",
                f"| `cp -r` | {i['cp_r_s']:.3f} | |",
                f"| `cp -r` + fsync of every file | {i['cp_r_sync_s']:.3f} | |",
                f"| `lorakit install` (sha256, blobs, fsync, atomic rename) | {i['install_s']:.3f} | "
                f"{_x(i['ratio_install_vs_cp'])} `cp -r`, {_x(i['ratio_install_vs_cp_sync'])} `cp -r`+fsync |",
                f"| re-install of identical content | {i['reinstall_s']:.3f} | "
                f"{100 * i['ratio_reinstall_vs_install']:.1f}% of a first install |", ""]
    p = _load("predict_throughput")
    if p:
        r, o, f, q = p["reference"], p["lorakit"], p["lorakit_fp32"], p["int8"]
        out += [f"**Batch prediction** — `{p['command']}` ({p['texts']} test tweets, batch {p['batch_size']}, "
                f"{p['threads']} threads)", "",
                "| | texts/s | × reference | accuracy | same predictions as the reference |", "|---|---|---|---|---|",
                f"| reference: {r['what']} | {r['texts_per_s']:.1f} | | {r['accuracy']:.4f} | |",
                f"| **lorakit predict** (merged, length-sorted, precision auto = {o['precision']}; "
                f"{100 * o['rows_computed_in_fp32']:.1f}% of texts decided in fp32) | {o['texts_per_s']:.1f} | "
                f"**{_x(p['ratio'])}** | {o['accuracy']:.4f} | {100 * p['same_predictions']:.1f}% |",
                f"| lorakit predict --precision fp32 | {f['texts_per_s']:.1f} | {_x(f['ratio_vs_reference'])} | "
                f"{f['accuracy']:.4f} | {100 * f['same_predictions']:.1f}% |",
                f"| lorakit predict --quantize int8 | {q['texts_per_s']:.1f} | {_x(q['ratio_vs_reference'])} | "
                f"{q['accuracy']:.4f} | {100 * q['same_predictions_as_fp32']:.1f}% (vs fp32) |", ""]
    v = _load("serve_throughput")
    if v:
        names = {"a_one_merged": "(a) one merged adapter", "b_mixed": "(b) 8 adapters, mixed batches",
                 "c_switch": "(c) 8 adapters, switching per request"}
        out += [f"**Serving** — `{v['command']}` ({v['setup']['clients']} concurrent clients, "
                f"{v['setup']['requests']} requests per scenario, loopback)", "",
                "| scenario | texts/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|"]
        for key, label in names.items():
            r = v["results"][key]
            out.append(f"| {label} | {r['texts_per_s']:.1f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} |")
        out += ["", f"(b)/(a) = {v['ratio_b_over_a']:.2f}, (b)/(c) = {v['ratio_b_over_c']:.2f}", ""]
    k = _load("serve_soak")
    if k:
        r = k["rounds"]
        half = r[len(r) // 2 - 1]["rss_mb"]
        out += [f"Soak — `{k['command']}`: {k['requests']} requests from {k['setup']['clients']} clients, "
                f"1 in 6 malformed ({k['setup']['malformed_kinds']} kinds): {k['5xx_or_no_answer']} answered 5xx "
                f"or not at all; server memory {k['rss_mb_at_start']:.0f} MB at start, {r[0]['rss_mb']:.0f} MB "
                f"after {k['setup']['requests_per_round']} requests, {half:.0f} → {r[-1]['rss_mb']:.0f} MB over "
                f"the second half ({100 * k['rss_growth_second_half']:+.1f}%).", ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text:
        raise SystemExit(f"README.md has no {START} marker")
    block = render()
    found = [p for p in machine_paths() if p in block]
    if found:
        raise SystemExit(f"a result in benchmarks/results/ records {found[0]!r}, a path of this machine: "
                         "make it relative to the repository root or leave it out, then run this again")
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{block}{END}", text, flags=re.S)
    readme.write_text(new)
    print("README.md results updated")


if __name__ == "__main__":
    main()
