"""Causal language modelling: a prompt in, generated text out (headlines, summaries, translation,
chat), with decoder-only models (Llama, Qwen, Mistral, Gemma, Phi-3, GPT-2, ...).

Roles per file: data.py (the recipe's data section, built-in datasets and files, splits),
template.py (rows -> token ids and the positions trained, chat templates), model.py (model class,
'auto' target modules, validation loss), card.py (the adapter's model card).

Validation scores the loss on the completions (lower is better) and its perplexity; generated
text is scored by `lorakit eval` (ROUGE, BLEU, chrF).
"""

from lorakit.errors import DataError
from lorakit.tasks.base import Encoded, Task
from lorakit.tasks.causal_lm import card, template
from lorakit.tasks.causal_lm import model as lm
from lorakit.tasks.causal_lm.data import CausalLMData, prepare

SAMPLES = 3  # validation prompts generated for after each epoch (TensorBoard and the run's samples/)
SAMPLE_TOKENS = 48


class CausalLM(Task):
    name = "causal-lm"
    summary = "text generation: a decoder-only model continues a prompt (headlines, translation, chat)"
    data_args = CausalLMData
    metrics = {"loss": "min", "perplexity": "min"}
    peft_task_type = "CAUSAL_LM"
    target_presets = lm.TARGET_PRESETS
    commands = frozenset({"train", "eval", "generate", "merge", "unmerge"})
    default_base = "smollm2"
    vocabulary_check = False  # a byte-level BPE never meets an unknown word

    def prepare(self, data):
        return prepare(data)

    def meta(self, splits, data) -> dict:
        return {"dataset": data.dataset, "template": data.template, "train_on_prompt": data.train_on_prompt,
                "packing": data.packing, "max_length": data.max_length}

    def tokenizer_meta(self, meta, tokenizer) -> dict:
        return {**meta, "chat": template.uses_chat(tokenizer, meta["template"])}

    def base_warnings(self, model, tokenizer, meta) -> list[str]:
        if not meta["chat"] or not (tokens := lm.untrained_template_tokens(model, tokenizer)):
            return []
        return [f"the chat template writes {', '.join(tokens)}, whose embeddings look untrained in this base "
                "(near zero): the model may not learn to read them; use data.template=plain, or an instruct base"]

    def encode(self, tokenizer, table, meta, data) -> Encoded:
        seqs, labels, bad = [], [], []
        for row, line in zip(table.rows, table.lines or range(1, len(table) + 1)):
            try:
                ids, y = template.encode_row(tokenizer, row, data.max_length, meta["chat"], meta["train_on_prompt"])
            except template.BadRow as e:
                bad.append(f"line {line}: {e}")
                continue
            seqs.append(ids)
            labels.append(y)
        if bad and data.on_bad_rows == "error":
            raise DataError(f"{table.source}: {len(bad)} bad row{'s' * (len(bad) > 1)} ({'; '.join(bad[:3])}"
                            f"{'; ...' if len(bad) > 3 else ''})",
                            "raise data.max_length, fix the rows, or set data.on_bad_rows=skip")
        if not seqs:
            raise DataError(f"{table.source}: no row fits data.max_length={data.max_length}", "raise data.max_length")
        return Encoded(seqs, labels, skipped=len(bad))

    def load_model(self, base_dir, meta):
        return lm.load_causal_lm(base_dir)

    def inputs(self, enc, idx, pad_id, meta):
        batch = lm.collate([enc.seqs[j] for j in idx], [enc.targets[j] for j in idx], pad_id,
                           packed=meta.get("packing", False))
        return {**batch, "use_cache": False}  # training keeps no key/value cache

    def loss_units(self, enc, idx):
        # The loss is a mean over the tokens trained; the first token is never predicted (nothing precedes it).
        return sum(sum(y != template.IGNORE for y in enc.targets[j][1:]) for j in idx)

    def predict(self, model, enc, pad_id, batch_size, device, max_tokens, inference_mode=True):
        return lm.token_losses(model, enc.seqs, enc.targets, pad_id, batch_size, device, max_tokens,
                               inference_mode=inference_mode)

    def score(self, outputs, enc, meta):
        return lm.corpus_loss(outputs)

    def kept(self, scores):
        return {k: scores[k] for k in ("loss", "perplexity", "tokens")}

    def samples(self, model, tokenizer, table, meta, device) -> list[dict]:
        """A few validation prompts answered greedily by the model as it is now."""
        from lorakit.model.generate import Generator, Sampling

        rows = [r for r in table.rows if "text" not in r][:SAMPLES]
        room = template.prompt_room(meta["max_length"], SAMPLE_TOKENS)  # prompts cut as in training
        prompts = [template.prompt_ids(tokenizer, r, meta["chat"], room) for r in rows]
        outputs = Generator(model, tokenizer, device).generate(prompts, Sampling(max_new_tokens=SAMPLE_TOKENS))
        return [{"prompt": shown_prompt(r), "reference": reference(r), "output": o.text} for r, o in zip(rows, outputs)]

    def card(self, cfg, meta, val, trainable, total):
        return card.model_card(cfg, meta, val, trainable, total)

    def merged_config(self, config, meta):
        return lm.merged_config(config)


def shown_prompt(row: dict) -> str:
    """What a row asks: its prompt, or its conversation's last user turn."""
    if "messages" in row:
        return next((m["content"] for m in reversed(row["messages"]) if m["role"] == "user"), "")
    return row.get("prompt", "")


def reference(row: dict) -> str:
    """The answer a row holds: its completion, or its conversation's last assistant turn."""
    if "completion" in row:
        return row["completion"]
    if "messages" in row:
        return next((m["content"] for m in reversed(row["messages"]) if m["role"] == "assistant"), "")
    return row.get("text", "")


CAUSAL_LM = CausalLM()
