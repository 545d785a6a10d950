"""Training a causal LM end to end on tiny random Llama and GPT-2 bases: the loss falls, the model
learns to stop, the adapter loads in plain PEFT, merging gives the same greedy text, resume
continues exactly, bad rows are named."""

import io
import json
import shutil

import pytest
import torch
from helpers import LM_VOCAB, assert_user_error, lorakit, make_tiny_causal_lm, translation_rows

from lorakit.errors import TrainingInterrupted
from lorakit.training.loop import train

PROMPT = "translate : {source}"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def pairs(n, seed=0):
    """One number word each: a two-layer random model learns the word-for-word mapping in a few epochs."""
    return [{"prompt": PROMPT.format(source=r["source"]), "completion": r["target"]}
            for r in translation_rows(n, seed, max_words=1)]


def lm_overrides(root, data, base, **extra) -> dict:
    o = {"task": "causal-lm", "name": "lm", "out_dir": str(root), "base": str(base), "data.dataset": str(data),
         "data.max_length": 32, "lora.r": 16, "lora.alpha": 16, "lora.dropout": 0.0, "train.epochs": 8,
         "train.batch_size": 16, "train.lr": 0.005, "train.threads": 1, "train.warmup_ratio": 0.0}
    o.update(extra)
    return o


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return make_tiny_causal_lm(tmp_path_factory.mktemp("bases") / "llama", "llama", hidden=64)


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, llama):
    """A tiny Llama taught number words in French (chat template), trained once for this module."""
    root = tmp_path_factory.mktemp("lm")
    data = write_jsonl(root / "pairs.jsonl", pairs(800))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORAKIT_HOME", str(root / "home"))
        m = train(overrides=lm_overrides(root / "runs", data, llama), show_progress=False)
    return root / "runs" / "lm", m


def test_the_loss_falls_and_the_run_records_a_generation_adapter(lm_run):
    run, m = lm_run
    losses = [h["val_loss"] for h in m["history"]]
    assert losses[-1] < 0.5 * losses[0]
    assert m["best_val"]["loss"] == min(losses) and m["best_val"]["perplexity"] == pytest.approx(
        torch.tensor(min(losses)).exp().item(), rel=1e-4)
    meta = json.loads((run / "adapter" / "lorakit.json").read_text())
    assert meta["task"] == "causal-lm" and meta["chat"] is True and "labels" not in meta
    assert json.loads((run / "adapter" / "adapter_config.json").read_text())["task_type"] == "CAUSAL_LM"
    samples = [json.loads(line) for line in (run / "samples" / "epoch-8.jsonl").read_text().splitlines()]
    assert len(samples) == 3 and all(s["prompt"].startswith("translate") for s in samples)


def test_the_trained_model_answers_and_stops(lm_run):
    import lorakit

    run, _ = lm_run
    test = [json.loads(line) for line in (run / "data" / "test.jsonl").read_text().splitlines()]
    outputs = lorakit.load(run).generate([r["prompt"] for r in test], max_new_tokens=12)
    assert all(o.finish_reason == "stop" for o in outputs)  # EOS was learned
    right = sum(o.text == r["completion"] for o, r in zip(outputs, test))
    assert right >= 0.8 * len(test), [(o.text, r["completion"]) for o, r in zip(outputs, test)][:5]


def _greedy(model, tokenizer, prompts, steps=6):
    """Greedy tokens of each prompt, and the gap between the two best logits at each step."""
    outs = []
    for ids in prompts:
        out = model.generate(torch.tensor([ids]), max_new_tokens=steps, do_sample=False, output_scores=True,
                             return_dict_in_generate=True, pad_token_id=tokenizer.eos_token_id)
        gaps = [float(s[0].topk(2).values[0] - s[0].topk(2).values[1]) for s in out.scores]
        outs.append((out.sequences[0, len(ids):].tolist(), gaps))
    return outs


def _assert_same_greedy(a, b):
    """Equal greedy tokens; a difference is accepted only where the two best logits were within 1e-4."""
    for (ta, gaps), (tb, _) in zip(a, b):
        for i, (x, y) in enumerate(zip(ta, tb)):
            if x != y:
                assert gaps[i] < 1e-4, f"greedy tokens differ at step {i} with a logit gap of {gaps[i]}"
                break


def _prompts(run, n=20):
    from transformers import AutoTokenizer

    from lorakit.tasks.causal_lm.template import prompt_ids

    tok = AutoTokenizer.from_pretrained(json.loads((run / "adapter" / "lorakit.json").read_text())["base_path"])
    rows = [json.loads(line) for line in (run / "data" / "test.jsonl").read_text().splitlines()][:n]
    return tok, [prompt_ids(tok, r, True, 32) for r in rows]


def test_plain_peft_and_the_merged_model_give_lorakits_greedy_text(lm_run, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from lorakit import load
    from lorakit.model.generate import Sampling

    run, _ = lm_run
    tok, prompts = _prompts(run)
    base = json.loads((run / "adapter" / "lorakit.json").read_text())["base_path"]
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), run / "adapter").eval()
    reference = _greedy(peft, tok, prompts)
    r = lorakit("merge", run, "--out", tmp_path / "merged")
    assert r.returncode == 0, r.stderr
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    _assert_same_greedy(reference, _greedy(merged, tok, prompts))
    ours = load(run).generator.generate(prompts, Sampling(max_new_tokens=6))  # merged at load, batched
    _assert_same_greedy(reference, [(o.tokens, []) for o in ours])


def test_gpt2_trains_and_merges_to_the_same_greedy_text(tmp_path):
    """GPT-2 keeps its projections in Conv1D layers (transposed weights): merging must say so."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = make_tiny_causal_lm(tmp_path / "gpt2", "gpt2", chat=False, hidden=64)
    data = write_jsonl(tmp_path / "pairs.jsonl", pairs(300))
    train(overrides=lm_overrides(tmp_path / "runs", data, base, **{"train.epochs": 2}), show_progress=False)
    run = tmp_path / "runs" / "lm"
    assert json.loads((run / "adapter" / "lorakit.json").read_text())["chat"] is False
    r = lorakit("merge", run, "--out", tmp_path / "merged")
    assert r.returncode == 0, r.stderr
    from transformers import AutoTokenizer

    from lorakit.tasks.causal_lm.template import prompt_ids

    tok = AutoTokenizer.from_pretrained(base)
    rows = [json.loads(line) for line in (run / "data" / "test.jsonl").read_text().splitlines()][:20]
    prompts = [prompt_ids(tok, r, False, 32) for r in rows]
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), run / "adapter").eval()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    _assert_same_greedy(_greedy(peft, tok, prompts), _greedy(merged, tok, prompts))


def test_a_stopped_run_resumes_to_the_same_adapter(tmp_path, llama, monkeypatch):
    from safetensors.torch import load_file

    from lorakit.training import stop

    data = write_jsonl(tmp_path / "pairs.jsonl", pairs(160))
    extra = {"train.epochs": 2, "lora.dropout": 0.1, "train.checkpoint_every": 3}
    train(overrides=lm_overrides(tmp_path / "whole", data, llama, **extra), show_progress=False)
    calls = {"n": 0}

    def stop_at_step_5(self, accelerator):
        calls["n"] += 1
        return calls["n"] == 5

    monkeypatch.setattr(stop.StopRequest, "requested_everywhere", stop_at_step_5)
    with pytest.raises(TrainingInterrupted):
        train(overrides=lm_overrides(tmp_path / "cut", data, llama, **extra), show_progress=False)
    monkeypatch.undo()
    train(resume=tmp_path / "cut" / "lm", show_progress=False)
    a, b = (load_file(tmp_path / d / "lm" / "adapter" / "adapter_model.safetensors") for d in ("whole", "cut"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)


def test_bad_rows_are_named_or_skipped_and_counted(tmp_path, llama, run_cli):
    rows = pairs(200)
    rows[3]["completion"] = ""
    rows[9]["completion"] = "un " * 40  # leaves no room within data.max_length
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    args = [f"{k}={v}" for k, v in lm_overrides(tmp_path / "runs", data, llama, **{"train.epochs": 1}).items()]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    r = run_cli("train", recipe, *args, "--quiet")
    assert_user_error(r, "line 4")
    r = run_cli("train", recipe, *args, "data.on_bad_rows=skip", "--quiet", "--overwrite")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "runs" / "lm" / "metrics.json").read_text())
    assert m["examples"]["skipped_bad_rows"] == 2


def test_commands_refuse_runs_of_the_other_task(lm_run, tiny_run, run_cli):
    run, _ = lm_run
    assert_user_error(lorakit("predict", run, "some text"), "does not fit a causal-lm run")  # the real entry point
    assert_user_error(run_cli("generate", tiny_run, "some text"), "does not fit a classification run")


def test_generate_streams_one_prompt_and_writes_json_lines_for_a_file(lm_run, tmp_path, run_cli):
    run, _ = lm_run
    r = run_cli("generate", run, "translate : five", "--max-new-tokens", "8")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "cinq\n"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("translate : one\ntranslate : four\n")
    r = run_cli("generate", run, "--file", prompts, "--max-new-tokens", "8")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["output"] for x in lines] == ["un", "quatre"]
    assert [x["prompt"] for x in lines] == ["translate : one", "translate : four"]
    assert all(x["finish_reason"] == "stop" for x in lines)


def test_chat_answers_each_message_and_starts_over_on_reset(lm_run, run_cli, monkeypatch):
    run, _ = lm_run
    monkeypatch.setattr("sys.stdin", io.StringIO("translate : one\n/reset\ntranslate : four\n/reset\ntranslate : seven\n\n"))
    r = run_cli("generate", run, "--chat", "--max-new-tokens", "6")
    assert r.returncode == 0, r.stderr
    assert r.stdout.replace("> ", "").split() == ["un", "quatre", "sept"]


def test_chat_sends_the_whole_conversation_each_turn(monkeypatch, capsys):
    from lorakit.cli.generate import _chat

    class Recorder:
        def __init__(self):
            self.seen = []

        def stream(self, messages, sampling):
            self.seen.append([dict(m) for m in messages])
            yield f"reply {len(self.seen)}"

    monkeypatch.setattr("sys.stdin", io.StringIO("hi\nand then?\n/reset\nagain\n\n"))
    g = Recorder()
    _chat(g, None)
    assert g.seen == [
        [{"role": "user", "content": "hi"}],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "reply 1"},
         {"role": "user", "content": "and then?"}],
        [{"role": "user", "content": "again"}],
    ]
    assert capsys.readouterr().out.replace("> ", "").split() == ["reply", "1", "reply", "2", "reply", "3"]


def test_eval_scores_the_adapter_against_the_base_and_writes_the_pages(lm_run, tmp_path, run_cli):
    run, _ = lm_run
    copy = tmp_path / "lm"
    shutil.copytree(run, copy)
    r = run_cli("eval", copy, "--baselines", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    systems = result["systems"]
    assert set(systems) == {"adapter", "base (zero-shot)"}  # a user file: no task baseline
    assert systems["adapter"]["exact_match"] >= 80 > systems["base (zero-shot)"]["exact_match"]
    assert systems["adapter"]["perplexity"] < systems["base (zero-shot)"]["perplexity"]
    html = (copy / "eval_test" / "report.html").read_text()
    first = json.loads((copy / "data" / "test.jsonl").read_text().splitlines()[0])
    reference_and_adapter = f'<td class="text">{first["completion"]}</td>' * 2
    assert f'<td class="text">{first["prompt"]}</td>{reference_and_adapter}' in html and "<script" not in html


def test_chat_tokens_with_untrained_embeddings_are_named_before_training(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    base = make_tiny_causal_lm(tmp_path / "base", "llama")
    weights = load_file(base / "model.safetensors")
    start = LM_VOCAB.index("<|im_start|>")
    weights["model.embed_tokens.weight"][start] = 0.0  # as bases that reserve chat tokens and never train them
    save_file(weights, base / "model.safetensors", metadata={"format": "pt"})
    data = write_jsonl(tmp_path / "pairs.jsonl", pairs(40))
    train(overrides=lm_overrides(tmp_path / "runs", data, base, **{"train.epochs": 1}), show_progress=False)
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: the chat template writes <|im_start|>, whose embeddings look untrained" in err
    assert "<|im_end|>" not in err  # trained rows are not named
    train(overrides=lm_overrides(tmp_path / "runs", data, base, **{"train.epochs": 1, "data.template": "plain"}),
          show_progress=False, overwrite=True)
    assert "untrained" not in capsys.readouterr().err


def _same_adapter(a, b, atol=1e-5):
    from safetensors.torch import load_file

    wa, wb = (load_file(r / "adapter" / "adapter_model.safetensors") for r in (a, b))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=atol, rtol=1e-4)


# fp32 and no dropout: these compare the arithmetic of different splits of a batch.
EXACT = {"train.epochs": 1, "train.precision": "fp32", "lora.dropout": 0.0}


def test_a_batch_split_by_the_token_budget_trains_as_the_whole_batch(tmp_path, llama):
    """Each pass's loss is a mean over its own tokens: weighted by examples, passes with longer
    answers would count for less (the gradient-accumulation bug); weighted by tokens they add up."""
    rows = pairs(96)
    for i, row in enumerate(rows):  # answers of 1 to 4 words: passes hold different numbers of tokens
        row["completion"] = " ".join([row["completion"]] * (i % 4 + 1))
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    for name, budget in (("whole", None), ("split", 48)):
        train(overrides=lm_overrides(tmp_path / name, data, llama, **EXACT, **{"train.max_tokens_per_pass": budget}),
              show_progress=False)
    _same_adapter(tmp_path / "whole" / "lm", tmp_path / "split" / "lm")


@pytest.mark.slow
def test_two_processes_train_as_one(tmp_path, llama):
    data = write_jsonl(tmp_path / "pairs.jsonl", pairs(96))
    train(overrides=lm_overrides(tmp_path / "one", data, llama, **EXACT), show_progress=False)
    args = [f"{k}={v}" for k, v in lm_overrides(tmp_path / "two", data, llama, **EXACT).items()]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    r = lorakit("train", recipe, *args, "--quiet", "--nproc", "2")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "two" / "lm" / "metrics.json").read_text())["processes"] == 2
    _same_adapter(tmp_path / "one" / "lm", tmp_path / "two" / "lm", atol=2e-4)
