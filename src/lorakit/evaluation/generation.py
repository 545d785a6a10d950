"""`lorakit eval` of a generation run: generate for a held-out split, score the text (ROUGE for
headlines and summaries, BLEU and chrF for translation), and the perplexity of the references;
with baselines, the same for the base model without the adapter (zero-shot) and a task baseline
(headlines: the article's first words; translation: the source copied) — same rows, same prompts.
"""

import json
from pathlib import Path

from lorakit.data.rows import read_rows
from lorakit.errors import RunError
from lorakit.evaluation.examples_page import write_pages
from lorakit.evaluation.text_baselines import task_baseline
from lorakit.evaluation.text_metrics import METRICS_BY_KIND, kind_of_dataset, score_texts
from lorakit.infer.textgen import TextGenerator
from lorakit.model.generate import Sampling
from lorakit.tasks.causal_lm import reference, shown_prompt
from lorakit.tasks.causal_lm.model import corpus_loss, token_losses
from lorakit.tasks.causal_lm.template import BadRow, encode_row

ADAPTER, BASE = "adapter", "base (zero-shot)"


def evaluate_generation(run: Path, path: Path, split: str, batch_size: int = 8, with_baselines: bool = False,
                        max_new_tokens: int | None = None) -> dict:
    rows = read_rows(path)
    if not len(rows):
        raise RunError(f"{path}: no rows to evaluate")
    generator = TextGenerator(run, batch_size, merge=not with_baselines)
    kind = kind_of_dataset(generator.meta.get("dataset", ""))
    metrics = METRICS_BY_KIND[kind]
    references = [reference(r) for r in rows.rows]
    sampling = Sampling(max_new_tokens=max_new_tokens or _answer_room(generator.tokenizer, references))

    with _bar() as bar:
        def written(system: str) -> list[str]:
            task = bar.add_task(f"generating: {system}", total=len(rows))
            return [o.text for o in generator.generate(rows.rows, sampling, progress=lambda n: bar.advance(task, n))]

        outputs = {ADAPTER: written(ADAPTER)}
        perplexity = {ADAPTER: _perplexity(generator, rows.rows)}
        if with_baselines:
            with generator.base_only():
                outputs[BASE] = written(BASE)
                perplexity[BASE] = _perplexity(generator, rows.rows)
        baseline = task_baseline(kind)
        if baseline is not None and all(r.get("source") for r in rows.rows):
            name, fn = baseline
            outputs[name] = [fn(r["source"]) for r in rows.rows]
    scores = {system: {**score_texts(texts, references, metrics), **perplexity.get(system, {})}
              for system, texts in outputs.items()}
    result = {"run": str(run), "split": split, "n": len(rows), "task": "causal-lm", "kind": kind,
              "metrics": metrics + ["perplexity"], "max_new_tokens": sampling.max_new_tokens,
              **scores[ADAPTER], "systems": scores}
    examples = [{"source": r.get("source") or shown_prompt(r), "reference": ref,
                 "outputs": {system: texts[i] for system, texts in outputs.items()}}
                for i, (r, ref) in enumerate(zip(rows.rows, references))]
    result["pages"] = {k: str(v) for k, v in write_pages(run / f"eval_{split}", f"{run.name} — {split} split",
                                                         scores, examples, list(outputs)).items()}
    with open(run / f"eval_{split}_outputs.jsonl", "w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    (run / f"eval_{split}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return result


def _bar():
    """Prompts answered so far, on stderr when it is a terminal (a long wait otherwise silent)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def _answer_room(tokenizer, references: list[str]) -> int:
    """Room for an answer as long as the longest reference, and a margin (the model may be wordier)."""
    longest = max(len(ids) for ids in tokenizer(references, add_special_tokens=False)["input_ids"])
    return min(512, int(longest * 1.5) + 8)


def _perplexity(generator: TextGenerator, rows: list[dict]) -> dict:
    """Of the references given their prompts, as training scores validation."""
    seqs, labels = [], []
    for row in rows:
        try:
            ids, y = encode_row(generator.tokenizer, row, generator.max_length, generator.chat, False)
        except BadRow:
            continue
        seqs.append(ids)
        labels.append(y)
    pad = generator.tokenizer.pad_token_id
    loss = corpus_loss(token_losses(generator.model, seqs, labels, pad, generator.generator.batch_size, "cpu", None))
    return {"loss": loss["loss"], "perplexity": loss["perplexity"]}

