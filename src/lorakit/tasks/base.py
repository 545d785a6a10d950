"""What a task is: the parts of the flow that differ between tasks, behind one interface.

A task decides what a row is (its recipe data section and how rows become examples), which model
class and PEFT task type are used (with 'auto' target-module presets), how a training batch is
collated, which metrics say "better", and how outputs are read. Everything else — the store,
batching, the training loop, checkpoints, distributed training, serving machinery — is shared.
A task is one sub-package of lorakit.tasks, registered in lorakit/tasks/__init__.py.
"""

from dataclasses import dataclass
from pathlib import Path

from lorakit.data.args import DataArgs


@dataclass
class Encoded:
    """A split tokenised once: unpadded token ids per example and the task's target of each."""
    seqs: list[list[int]]
    targets: list
    skipped: int = 0  # rows left out as bad (data.on_bad_rows: skip)

    @property
    def lengths(self) -> list[int]:
        return [len(s) for s in self.seqs]

    def __len__(self) -> int:
        return len(self.seqs)


class Task:
    name: str
    """Registry name, recorded in config.yaml (task:) and in each adapter's lorakit.json."""
    summary: str
    """One line for help texts and errors: what the task does."""
    data_args: type[DataArgs]
    """The recipe's data section for this task (pydantic)."""
    metrics: dict[str, str]
    """Validation metrics that can select the best epoch, each 'max' or 'min'; the first is the default."""
    peft_task_type: str
    """PEFT TaskType of the adapters."""
    target_presets: dict[str, list[str]]
    """lora.target_modules 'auto': the modules to adapt, by the base's model_type."""
    commands: frozenset[str]
    """The lorakit commands that work on runs of this task."""
    default_base: str = "minilm"
    """The recipe's base when it names none."""
    vocabulary_check: bool = True
    """Warn when the base's tokenizer keeps few of the data's words whole (model/fit.py): wrong-language bases."""

    # ---- data --------------------------------------------------------------------------------

    def prepare(self, data: DataArgs):
        """The splits of the recipe's dataset: an object with ``train``, ``val``, ``test`` tables and
        ``skipped`` (bad rows skipped)."""
        raise NotImplementedError

    def meta(self, splits, data: DataArgs) -> dict:
        """What the adapter records about its data in lorakit.json, and what loading needs (e.g. labels)."""
        raise NotImplementedError

    def tokenizer_meta(self, meta: dict, tokenizer) -> dict:
        """``meta`` with what the base's tokenizer decides (e.g. whether a chat template is used)."""
        return meta

    def encode(self, tokenizer, table, meta: dict, data: DataArgs) -> Encoded:
        """A split's rows as token ids and targets, within ``data.max_length``."""
        raise NotImplementedError

    # ---- model -------------------------------------------------------------------------------

    def load_model(self, base_dir: Path, meta: dict):
        """(model, tokenizer): the base in fp32 with this task's head, for ``meta`` (see ``meta``)."""
        raise NotImplementedError

    def base_warnings(self, model, tokenizer, meta: dict) -> list[str]:
        """What the user should know about this base for this task before training (one line each)."""
        return []

    def inputs(self, enc: Encoded, idx: list[int], pad_id: int, meta: dict) -> dict:
        """Model inputs of a training pass over examples ``idx``, the loss's labels included (tensors,
        and keyword options such as use_cache)."""
        raise NotImplementedError

    def loss_units(self, enc: Encoded, idx: list[int]) -> int:
        """What the model's loss over examples ``idx`` is a mean over (examples here), so that passes of a
        batch split across processes or token budgets add up to the loss of the whole batch."""
        return len(idx)

    # ---- validation and metrics ----------------------------------------------------------------

    def predict(self, model, enc: Encoded, pad_id: int, batch_size: int, device, max_tokens: int | None,
                inference_mode: bool = True) -> list:
        """One output per example, in order: what ``score`` compares with the targets."""
        raise NotImplementedError

    def score(self, outputs: list, enc: Encoded, meta: dict) -> dict:
        """Every metric of ``metrics`` (and details such as per-class scores) of ``outputs``."""
        raise NotImplementedError

    def samples(self, model, tokenizer, table, meta: dict, device) -> list[dict] | None:
        """A few outputs of the model as it is now, shown after each epoch (None: the task shows none)."""
        return None

    def kept(self, scores: dict) -> dict:
        """The part of ``scores`` a run keeps for its best epoch (metrics.json's best_val)."""
        return {k: scores[k] for k in self.metrics}

    def better(self, metric: str, new: dict, old: dict | None) -> bool:
        """Is ``new`` better than ``old`` on ``metric``, in the metric's own direction?"""
        if old is None:
            return True
        return new[metric] > old[metric] if self.metrics[metric] == "max" else new[metric] < old[metric]

    # ---- files -------------------------------------------------------------------------------

    def card(self, cfg, meta: dict, val: dict, trainable: int, total: int) -> str:
        """The adapter's README.md (model card)."""
        raise NotImplementedError

    def merged_config(self, config: dict, meta: dict) -> dict:
        """config.json of a merged model: the base's, with this task's architecture and head settings."""
        raise NotImplementedError
