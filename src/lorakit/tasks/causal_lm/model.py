"""The causal-LM model: the base's own language-model head, 'auto' target modules per architecture,
the validation loss, and the merged model's config.

(torch and transformers are imported where a model runs: merging reads this module without them.)
"""

import math

# Attention and feed-forward projections per architecture ('auto' target modules). GPT-2 keeps
# its projections in Conv1D layers (PEFT transposes them: fan_in_fan_out).
_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TARGET_PRESETS = {
    **{t: _LLAMA_LIKE for t in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text",
                                "smollm3", "olmo2")},
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}


def load_causal_lm(base_dir):
    """(model, tokenizer): the base with its language-model head, in fp32. A tokenizer without a pad
    token pads with EOS: padded positions are masked by position, never by token (template.py)."""
    from transformers import AutoModelForCausalLM

    from lorakit.model.load import load_pretrained

    model, tokenizer = load_pretrained(AutoModelForCausalLM, base_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def untrained_template_tokens(model, tokenizer) -> list[str]:
    """The special tokens the chat template writes whose input-embedding rows look untrained: far shorter
    than a typical row (bases that reserve chat tokens and never trained them leave zeros or near-zeros
    there). A model cannot learn to read such a token through LoRA alone."""
    import torch

    if not tokenizer.chat_template:
        return []
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    rendered = tokenizer.apply_chat_template(turns, tokenize=False)
    special = set(tokenizer.added_tokens_decoder) | set(tokenizer.all_special_ids)
    used = sorted(set(tokenizer(rendered, add_special_tokens=False)["input_ids"]) & special)
    rows = model.get_input_embeddings().weight.detach().float()
    norms = rows.norm(dim=1)
    typical = norms.median()
    return [tokenizer.convert_ids_to_tokens(i) for i in used if i < len(rows) and norms[i] < 0.05 * typical]


def collate(seqs: list[list[int]], labels: list[list[int]], pad_id: int, packed: bool = False) -> dict:
    """Right-padded input ids, attention mask and labels (padding: no loss), to a rounded-up width.

    ``packed``: the examples share rows instead (first fit, longest first, in rows as wide as the
    longest), each with positions from 0 and no attention mask: transformers then keeps attention
    within each example (it finds where positions restart), and a row's first label of each example is
    not trained (it would be predicted from the example before)."""
    import torch

    from lorakit.data.batching import padded_width
    from lorakit.tasks.causal_lm.template import IGNORE

    width = padded_width(max(len(s) for s in seqs))
    rows = pack(seqs, width) if packed else [[i] for i in range(len(seqs))]
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    target = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, members in enumerate(rows):
        at = 0
        for i in members:
            n = len(seqs[i])
            ids[row, at: at + n] = torch.tensor(seqs[i])
            target[row, at: at + n] = torch.tensor(labels[i])
            target[row, at] = IGNORE
            positions[row, at: at + n] = torch.arange(n)
            mask[row, at: at + n] = 1
            at += n
        positions[row, at:] = torch.arange(width - at)  # padding: a segment of its own
    if packed:
        return {"input_ids": ids, "position_ids": positions, "labels": target}
    return {"input_ids": ids, "attention_mask": mask, "labels": target}


def pack(seqs: list[list[int]], width: int) -> list[list[int]]:
    """Indices of ``seqs`` grouped into rows of at most ``width`` tokens: first fit, longest first."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(seqs)), key=lambda i: -len(seqs[i])):
        n = len(seqs[i])
        row = next((r for r, free in enumerate(room) if free >= n), None)
        if row is None:
            rows.append([])
            room.append(width)
            row = len(rows) - 1
        rows[row].append(i)
        room[row] -= n
    return rows


def token_losses(model, seqs: list[list[int]], labels: list[list[int]], pad_id: int, batch_size: int, device,
                 max_tokens: int | None, inference_mode: bool = True) -> list[tuple[float, int]]:
    """(summed loss, trained tokens) of each example, in input order: corpus loss and perplexity are
    the sums' ratio, whatever the batches."""
    import torch
    import torch.nn.functional as F

    from lorakit.data.batching import sorted_batches
    from lorakit.tasks.causal_lm.template import IGNORE

    was_training = model.training
    model.eval()
    out: list[tuple[float, int]] = [(0.0, 0)] * len(seqs)
    with torch.inference_mode() if inference_mode else torch.no_grad():
        for idx in sorted_batches([len(s) for s in seqs], batch_size, max_tokens):
            batch = collate([seqs[i] for i in idx], [labels[i] for i in idx], pad_id)
            target = batch.pop("labels")[:, 1:].to(device)
            logits = model(**{k: v.to(device) for k, v in batch.items()}, use_cache=False).logits[:, :-1].float()
            loss = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=IGNORE, reduction="none")
            sums, counts = loss.sum(1).cpu(), (target != IGNORE).sum(1).cpu()
            for row, i in enumerate(idx):
                out[i] = (sums[row].item(), int(counts[row]))
    if was_training:
        model.train()
    return out


def corpus_loss(outputs: list[tuple[float, int]]) -> dict:
    total, tokens = sum(s for s, _ in outputs), sum(n for _, n in outputs)
    loss = total / tokens if tokens else float("nan")
    return {"loss": loss, "perplexity": math.exp(loss) if loss < 700 else float("inf"), "tokens": tokens}


def merged_config(config: dict) -> dict:
    """A merged causal LM is the base's architecture with other weights: the config stays the base's."""
    return dict(config)
