"""The reference: LoRA fine-tuning as the PEFT documentation shows it.

transformers Trainer + DataCollatorWithPadding + get_peft_model, no lorakit code. Reads the
same train/val examples (JSONL) that lorakit trains on and prints one JSON line of results.

    python benchmarks/reference/trainer_lora.py MODEL_DIR TRAIN.jsonl VAL.jsonl '{"r": 8, ...}'
"""

import json
import resource
import sys
import time

import numpy as np
import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                          TrainingArguments)


def read(path):
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    return [r["text"] for r in rows], [r["label"] for r in rows]


class Encoded(torch.utils.data.Dataset):
    def __init__(self, enc, labels):
        self.enc, self.labels = enc, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.enc["input_ids"][i], "attention_mask": self.enc["attention_mask"][i],
                "labels": self.labels[i]}


def main(model_dir, train_path, val_path, hp):
    torch.set_num_threads(hp["threads"])
    train_texts, train_labels = read(train_path)
    val_texts, val_labels = read(val_path)
    names = sorted(set(train_labels))
    ids = {n: i for i, n in enumerate(names)}

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=len(names))
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=hp["r"], lora_alpha=hp["alpha"],
                                             lora_dropout=hp["dropout"], target_modules=hp["target_modules"]))
    train_ds = Encoded(tokenizer(train_texts, truncation=True, max_length=hp["max_length"]),
                       [ids[label] for label in train_labels])
    val_ds = Encoded(tokenizer(val_texts, truncation=True, max_length=hp["max_length"]),
                     [ids[label] for label in val_labels])

    args = TrainingArguments(
        output_dir=hp["output_dir"], per_device_train_batch_size=hp["batch_size"],
        per_device_eval_batch_size=hp["eval_batch_size"], learning_rate=hp["lr"], weight_decay=hp["weight_decay"],
        warmup_steps=hp["warmup_ratio"], lr_scheduler_type="linear", num_train_epochs=hp["epochs"],
        max_grad_norm=hp["max_grad_norm"], seed=hp["seed"], use_cpu=True, report_to=[], save_strategy="no",
        eval_strategy="no", logging_steps=50, disable_tqdm=True, dataloader_num_workers=0,
        # variants a user might add: {"bf16": true}, {"train_sampling_strategy": "group_by_length"}
        **hp.get("training_args", {}),
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_ds,
                      data_collator=DataCollatorWithPadding(tokenizer))
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    pred = trainer.predict(val_ds)
    accuracy = float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())
    print(json.dumps({
        "samples_per_s": len(train_ds) * hp["epochs"] / seconds, "train_seconds": seconds,
        "val_accuracy": accuracy, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
