"""Full fine-tuning of the same model on the same split as an accuracy run: what LoRA is compared with.

    python benchmarks/full_finetune.py tweets-sentiment [--lr 5e-5] [--epochs 3] [--runs DIR]

Every weight trains, in a plain PyTorch loop (AdamW, linear warmup and decay, gradient clipping,
length-bucketed batches of 32 as lorakit uses), on the exact split of RUNS/accuracy-NAME, the run
accuracy.py left (RUNS defaults to lorakit-bench/runs in the system temp dir): the training split
rebuilt from its config.yaml, the validation and test splits it saved. The best validation epoch
is scored on the test split. A long run (about an hour on 2 CPU cores for the
tweets); the result goes into results/accuracy.json under runs[NAME]["full_finetune"].
"""

import argparse
import json
import math
import time
from pathlib import Path

import torch
from transformers import get_scheduler

from common import RESULTS, SCRATCH, write_json


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("--lr", type=float, default=5e-5, help="the usual full fine-tuning rate for BERT-size models")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--runs", default=str(SCRATCH / "runs"), help="the out_dir accuracy.py trained into")
    a = p.parse_args()

    from lorakit.config import load_config
    from lorakit.data import read_split
    from lorakit.data.batching import bucket_batches, collate, encode
    from lorakit.model.forward import batched_logits
    from lorakit.store import model_dir
    from lorakit.tasks.classification.data import prepare
    from lorakit.tasks.classification.model import load_classifier as load_base

    run = Path(a.runs) / f"accuracy-{a.name}"
    cfg = load_config(run / "config.yaml")
    torch.manual_seed(cfg.train.seed)
    splits = prepare(cfg.data)
    val, test = read_split(run / "data" / "val.jsonl"), read_split(run / "data" / "test.jsonl")
    assert val.texts == splits.val.texts, "the rebuilt split differs from the run's"
    names = splits.label_names
    ids = {n: i for i, n in enumerate(names)}
    model, tokenizer = load_base(model_dir(cfg.base), names)
    pad = tokenizer.pad_token_id
    train_seqs = encode(tokenizer, splits.train.texts, cfg.data.max_length)
    train_y = torch.tensor([ids[label] for label in splits.train.labels])
    lengths = [len(s) for s in train_seqs]

    bs = cfg.train.batch_size
    steps = a.epochs * math.ceil(len(train_seqs) / bs)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.train.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, foreach=True)
    scheduler = get_scheduler("linear", optimizer, int(cfg.train.warmup_ratio * steps), steps)
    trainable = sum(p.numel() for p in model.parameters())

    def accuracy(table) -> float:
        seqs = encode(tokenizer, table.texts, cfg.data.max_length)
        pred = batched_logits(model, seqs, pad, 128).argmax(-1).tolist()
        return sum(names[i] == label for i, label in zip(pred, table.labels)) / len(pred)

    started, best, history = time.time(), None, []
    for epoch in range(1, a.epochs + 1):
        model.train()
        for step, idx in enumerate(bucket_batches(lengths, bs, cfg.train.seed, epoch)):
            loss = model(**collate([train_seqs[i] for i in idx], pad), labels=train_y[idx]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if step % 100 == 0:
                print(f"epoch {epoch} step {step} loss {loss.item():.4f} {time.time() - started:.0f} s", flush=True)
        acc = accuracy(val)
        history.append({"epoch": epoch, "val_accuracy": acc})
        print(f"epoch {epoch}: validation accuracy {acc:.4f}", flush=True)
        if best is None or acc > best[0]:
            best = (acc, epoch, {k: v.clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    result = {"command": f"python benchmarks/full_finetune.py {a.name} --lr {a.lr} --epochs {a.epochs}",
              "test_accuracy": accuracy(test), "best_epoch": best[1], "history": history,
              "trainable_parameters": trainable, "lr": a.lr, "epochs": a.epochs,
              "wall_seconds": time.time() - started}
    path = RESULTS / "accuracy.json"
    data = json.loads(path.read_text())
    data["runs"][a.name]["full_finetune"] = result
    write_json(path, data)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
