"""lorakit merge / unmerge / combine / export: plain weights, adapter combinations, deployment formats."""

import json

from lorakit.cli.output import err, out
from lorakit.errors import LorakitError

def cmd_merge(a) -> None:
    from lorakit.export.merge import merge

    r = merge(a.adapter, a.out, base=a.base, force=a.force, install=a.install)
    if a.json:
        print(json.dumps(r))
        return
    kind = "DoRA" if r["dora"] else "LoRA"
    out.print(f"merged {kind} adapter {r['adapter']} ({r['modules']} modules) into {r['base']} "
              f"-> {r['out']} ({r['tensors']} tensors; base unchanged, checked by {r['base_check']})")
    if r.get("installed"):
        out.print(f"installed as model [bold]{r['installed']}[/]")
    out.print(f"load it with: AutoModelForSequenceClassification.from_pretrained({r['out']!r})")

def cmd_unmerge(a) -> None:
    from lorakit.export.unmerge import unmerge

    r = unmerge(a.merged, a.out, adapter=a.adapter, force=a.force)
    if a.json:
        print(json.dumps(r))
        return
    out.print(f"removed adapter {r['adapter']} ({r['modules']} modules) from {r['merged']} -> base model in {r['out']}")

def _weights(text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise LorakitError(f"--weights {text!r} is not a comma-separated list of numbers", "e.g. --weights 0.7,0.3")

def cmd_combine(a) -> None:
    from lorakit.export.combine import combine

    weights = _weights(a.weights) if a.weights else [1.0 / len(a.adapters)] * len(a.adapters)
    r = combine(a.adapters, a.out, weights=weights, method=a.method, density=a.density, svd_rank=a.svd_rank,
                seed=a.seed, force=a.force)
    if a.json:
        print(json.dumps(r))
        return
    out.print(f"combined {len(r['adapters'])} adapters ({r['method']}, weights {r['weights']}) into a rank-{r['rank']} "
              f"adapter over {r['modules']} modules -> {r['out']}")
    out.print(f"next: lorakit merge {r['out']} --out DIR")

def cmd_export(a) -> None:
    from lorakit.export.package import export

    r = export(a.run, a.format, a.out, force=a.force, batch_size=a.batch_size, threads=a.threads)
    if a.json:
        print(json.dumps(r))
        return
    ref, cand = (r[name] for name in r["sides"])
    what = {"peft": "base + adapter through PEFT", "merged": "the merged fp32 model"}[r["sides"][0]]
    out.print(f"{a.format} export -> {r['out']}  ({', '.join(r['files'])})", highlight=False)
    out.print(f"checked on {r['examples']} test texts against {what}, {r['threads']} threads: accuracy "
              f"{ref['accuracy']:.4f} -> {cand['accuracy']:.4f} ({r['accuracy_change']:+.4f}), same label for "
              f"{r['prediction_agreement']:.1%}; {r['speed_ratio']:.2f}x its speed; max |logit diff| "
              f"{r['max_abs_logit_diff']:.2g}, max |prob diff| {r['max_abs_prob_diff']:.2g}", highlight=False)
    if not r["within_tolerance"]:
        err.print(f"warning: {r['tolerance']['on']}s differ by more than the tolerance "
                  f"{r['tolerance']['max_abs_diff']:g}; see {r['out']}/check.json", highlight=False)


def register(sub) -> None:
    s = sub.add_parser("merge", help="merge an adapter into its base: plain weights any transformers code loads")
    s.add_argument("adapter", metavar="RUN_OR_ADAPTER", help="run folder, adapter folder or installed adapter name")
    s.add_argument("--out", required=True, help="folder to write (config.json, model.safetensors, tokenizer, labels)")
    s.add_argument("--base", help="base model to merge into (default: the adapter's own base)")
    s.add_argument("--install", metavar="NAME", help="also install the merged model into the store as NAME")
    s.add_argument("--force", action="store_true", help="replace an existing --out folder (and store entry NAME)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_merge)

    s = sub.add_parser("unmerge", help="take a merged adapter back out: the base model again (LoRA, fp32)")
    s.add_argument("merged", help="a folder written by lorakit merge")
    s.add_argument("--out", required=True, help="folder to write the base model to")
    s.add_argument("--adapter", help="the adapter that was merged (default: the one recorded by merge)")
    s.add_argument("--force", action="store_true", help="replace an existing --out folder")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_unmerge)

    s = sub.add_parser("combine", help="combine adapters of one base into a new adapter (PEFT weighted combination)")
    s.add_argument("adapters", nargs="+", metavar="ADAPTER", help="run folders, adapter folders or installed names")
    s.add_argument("--out", required=True, help="adapter folder to write")
    s.add_argument("--weights", help="one weight per adapter, e.g. 0.7,0.3 (default: equal)")
    s.add_argument("--method", default="linear", choices=["linear", "cat", "ties", "dare_linear", "svd"])
    s.add_argument("--density", type=float, help="share of values kept by ties/dare_linear (default 0.5)")
    s.add_argument("--svd-rank", type=int, help="rank of an svd combination (default: the largest input rank)")
    s.add_argument("--seed", type=int, default=0, help="seed of dare's random drop")
    s.add_argument("--force", action="store_true", help="replace an existing --out folder")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_combine)

    s = sub.add_parser("export", help="merge and convert a run for deployment, checked on its test split")
    s.add_argument("run", help="run folder, e.g. runs/demo")
    s.add_argument("--format", default="safetensors", choices=["safetensors", "int8", "onnx"],
                   help="safetensors: merged fp32 weights; int8: dynamic quantization for CPU; onnx: model.onnx")
    s.add_argument("--out", help="folder to write (default: RUN/export/FORMAT)")
    s.add_argument("--batch-size", type=int, default=64, help="batch size of the check")
    s.add_argument("--threads", type=int, help="CPU threads of the check (default: torch's)")
    s.add_argument("--force", action="store_true", help="replace an existing --out folder")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_export)
