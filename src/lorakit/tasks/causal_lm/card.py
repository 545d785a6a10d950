"""The model card (README.md) written next to a causal-LM adapter."""


def model_card(cfg, meta: dict, val: dict, trainable: int, total: int) -> str:
    form = "the base's chat template" if meta["chat"] else "plain text (prompt, newline, completion)"
    return f"""---
library_name: peft
base_model: {meta['base_path']}
tags: [lorakit, {cfg.lora.method}, text-generation]
---
# {cfg.name}

A {cfg.lora.method} adapter (r={cfg.lora.r}, alpha={cfg.lora.alpha}) for text generation, trained by
lorakit on `{cfg.data.dataset}` over the base model `{cfg.base}`; prompts are written with {form}.

- trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)
- best epoch: {meta['epoch']} — validation loss {val['loss']:.4f}, perplexity {val['perplexity']:.2f}

Use it with lorakit:

    lorakit generate {cfg.run_dir} "some prompt"

or with plain PEFT:

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import PeftModel
    base = AutoModelForCausalLM.from_pretrained("{meta['base_path']}")
    tokenizer = AutoTokenizer.from_pretrained("{meta['base_path']}")
    model = PeftModel.from_pretrained(base, "{cfg.run_dir}/adapter")
"""
