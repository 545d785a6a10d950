"""Sequence classification: a text in, one of a fixed set of labels out (sentiment, topics, ...).

Roles per file: data.py (the recipe's data section, splits), model.py (model class, 'auto' target
modules, merged config), metrics.py (what "better" means), outputs.py (logits -> label and
probabilities), card.py (the adapter's model card).

torch is imported by the methods that run a model: merging reads the task without it.
"""

from lorakit.tasks.base import Encoded, Task
from lorakit.tasks.classification import card, metrics
from lorakit.tasks.classification import model as classifier
from lorakit.tasks.classification.data import ClassificationData, label_ids, prepare


class Classification(Task):
    name = "classification"
    summary = "sequence classification: each text gets one of a fixed set of labels"
    data_args = ClassificationData
    metrics = metrics.METRICS
    peft_task_type = "SEQ_CLS"  # PEFT's TaskType.SEQ_CLS: also saves the classifier head (modules_to_save)
    target_presets = classifier.TARGET_PRESETS
    commands = frozenset({"train", "eval", "predict", "serve", "merge", "unmerge", "combine", "export"})

    def prepare(self, data):
        return prepare(data)

    def meta(self, splits, data) -> dict:
        return {"labels": splits.label_names}

    def encode(self, tokenizer, table, meta, data) -> Encoded:
        seqs = tokenizer(table.texts, truncation=True, max_length=data.max_length)["input_ids"]
        return Encoded(seqs, label_ids(table, meta["labels"]))

    def load_model(self, base_dir, meta):
        return classifier.load_classifier(base_dir, meta["labels"])

    def inputs(self, enc, idx, pad_id, meta):
        import torch

        from lorakit.data.batching import collate

        return {**collate([enc.seqs[j] for j in idx], pad_id), "labels": torch.tensor([enc.targets[j] for j in idx])}

    def predict(self, model, enc, pad_id, batch_size, device, max_tokens, inference_mode=True):
        from lorakit.model.forward import batched_logits

        logits = batched_logits(model, enc.seqs, pad_id, batch_size, device, max_tokens,
                                inference_mode=inference_mode)
        return logits.argmax(-1).tolist()

    def score(self, outputs, enc, meta):
        return metrics.classification_metrics(enc.targets, outputs, meta["labels"])

    def kept(self, scores):
        return {k: scores[k] for k in ("accuracy", "macro_f1", "per_class")}

    def card(self, cfg, meta, val, trainable, total):
        return card.model_card(cfg, meta, val, trainable, total)

    def merged_config(self, config, meta):
        return classifier.merged_config(config, meta["labels"])


CLASSIFICATION = Classification()
