"""The model card (README.md) written next to a classification adapter."""


def model_card(cfg, meta: dict, val: dict, trainable: int, total: int) -> str:
    labels = ", ".join(meta["labels"])
    return f"""---
library_name: peft
base_model: {meta['base_path']}
tags: [lorakit, {cfg.lora.method}, text-classification]
---
# {cfg.name}

A {cfg.lora.method} adapter (r={cfg.lora.r}, alpha={cfg.lora.alpha}) for sequence classification,
trained by lorakit on `{cfg.data.dataset}` over the base model `{cfg.base}`.

- labels: {labels}
- trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)
- best epoch: {meta['epoch']} — validation accuracy {val['accuracy']:.4f}, macro-F1 {val['macro_f1']:.4f}

Use it with lorakit:

    lorakit predict {cfg.run_dir} "some text"

or with plain PEFT (the classifier head is saved with the adapter):

    from transformers import AutoModelForSequenceClassification
    from peft import PeftModel
    base = AutoModelForSequenceClassification.from_pretrained("{meta['base_path']}", num_labels={len(meta['labels'])})
    model = PeftModel.from_pretrained(base, "{cfg.run_dir}/adapter")
"""
