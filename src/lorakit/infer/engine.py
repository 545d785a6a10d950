"""The multi-adapter batch engine: one base model, many LoRA adapters, mixed batches.

Adapters with the same number of labels share one PEFT model ("pool"). A batch that mixes them
runs in one forward pass with every adapter's factors stacked side by side (lorakit.infer.stacked),
each row through its own LoRA weights and its own classifier head. A pool holding a single adapter
keeps it merged into the base weights, so serving one adapter costs what the base costs.
DoRA adapters cannot be stacked: each gets a pool (a base copy) of its own, merged.
On CPUs with native bf16 each pool also keeps a bf16 twin that runs the batches, with close
calls decided by the fp32 model (lorakit.infer.precision): the labels are fp32's.

Not thread-safe: one worker thread owns the engine (see lorakit.serve.batcher).
"""

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import PeftConfig, PeftModel
from transformers import AutoTokenizer

from lorakit import tasks
from lorakit.data.batching import collate, padding_bounded_chunks
from lorakit.infer import precision as precisions
from lorakit.infer.stacked import Stacks, unstackable
from lorakit.model.adapters import AdapterError, AdapterInfo, same_base
from lorakit.model.device import resolve_precision
from lorakit.model.load import quiet_transformers
from lorakit.store import model_dir
from lorakit.tasks.classification.outputs import to_results

__all__ = ["AdapterError", "AlreadyLoaded", "Engine", "UnknownAdapter"]


class AlreadyLoaded(AdapterError):
    pass


class UnknownAdapter(AdapterError):
    def __init__(self, name: str, loaded: list[str]):
        super().__init__(f"adapter {name!r} is not loaded", f"loaded: {', '.join(loaded) or 'none'}")
        self.name = name
        self.loaded = loaded


@dataclass
class Pool:
    model: PeftModel
    names: list[str] = field(default_factory=list)  # PEFT's adapter names (see Engine.add)
    merged: bool = False
    stacks: Stacks | None = None
    fast: PeftModel | None = None        # the bf16 twin, rebuilt whenever the adapters change
    fast_stacks: Stacks | None = None
    close_calls: precisions.CloseCalls = field(default_factory=precisions.CloseCalls)


class Engine:
    def __init__(self, base: str, *, mixed: bool = True, merge_single: bool = True, sub_batch: int = 64,
                 max_padding: float | None = None, precision: str = "auto"):
        """``mixed=False`` is the naive way, kept for comparison: switch the active adapter per call."""
        quiet_transformers()
        self.precision = resolve_precision(precision)
        self.base = base
        self.base_path: Path = model_dir(base)
        self.tokenizer = AutoTokenizer.from_pretrained(self.base_path)
        self.mixed = mixed
        self.sub_batch = sub_batch      # rows per forward pass, at most
        # Padded tokens per real token, at most (beyond the first row): bf16 passes are so quick that
        # each extra pass costs more than padding, fp32 ones are not (figures: benchmarks/README.md,
        # Measurements behind the code).
        self.max_padding = max_padding if max_padding is not None else (1.0 if self.precision == "bf16" else 0.25)
        self.merge_single = merge_single and mixed
        self.adapters: dict[str, AdapterInfo] = {}
        self._pools: dict[tuple, Pool] = {}  # see _pool_key
        self._pool_of: dict[str, tuple] = {}
        self._peft_name: dict[str, str] = {}
        self._loads = itertools.count()

    # ---- adapters -------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self.adapters)

    def unknown(self, name: str) -> "UnknownAdapter":
        return UnknownAdapter(name, self.names())

    def add(self, name: str, info: AdapterInfo) -> None:
        """Load an adapter; on any failure the engine is left exactly as it was."""
        if name in self.adapters:
            raise AlreadyLoaded(f"adapter {name!r} is already loaded", f"DELETE /v1/adapters/{name} first")
        tasks.require(info.task, "serve", "adapter")
        if not same_base(info, self.base, self.base_path):
            raise AdapterError(f"adapter {name!r} was trained on base {info.base!r}, this engine serves {self.base!r}",
                               "load it into a server started with that base")
        key = _pool_key(name, info, self.mixed)
        pool = self._pools.get(key)
        # PEFT finds AdaLoRA rank-pattern entries by substring of the adapter name, so a user's name
        # such as "a" would match "attention"; inside PEFT every adapter has a name no module has.
        pname = f"lorakit-{next(self._loads)}"
        try:
            if pool is None:
                base, _ = tasks.get(info.task).load_model(self.base_path, info.meta)
                pool = Pool(PeftModel.from_pretrained(base, info.path, adapter_name=pname).eval())
            else:
                self._unmerge(pool)
                pool.model.load_adapter(info.path, adapter_name=pname)
                pool.model.eval()
            if self.mixed and key[-1] is None and (why := unstackable(pool.model, pname)):
                raise ValueError(f"it cannot share mixed batches: {why}")
        except Exception as e:  # PEFT/safetensors raise many types for a bad or mismatched adapter
            if key in self._pools:
                if pname in pool.model.peft_config:
                    pool.model.delete_adapter(pname)
                self._settle(pool)
            reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else e.__class__.__name__
            raise AdapterError(f"cannot load adapter {name!r}: {reason}", "check that it was trained on this base") from None
        pool.names.append(pname)
        self._pools[key] = pool
        self._pool_of[name] = key
        self._peft_name[name] = pname
        self.adapters[name] = info
        self._settle(pool)

    def remove(self, name: str) -> None:
        if name not in self.adapters:
            raise self.unknown(name)
        del self.adapters[name]
        key, pname = self._pool_of.pop(name), self._peft_name.pop(name)
        pool = self._pools[key]
        pool.names.remove(pname)
        if not pool.names:
            del self._pools[key]  # the pool's model (and its memory) goes with its last adapter
            return
        self._unmerge(pool)
        pool.model.delete_adapter(pname)
        self._settle(pool)

    def _unmerge(self, pool: Pool) -> None:
        if pool.merged:
            pool.model.unmerge_adapter()
            pool.merged = False

    def _settle(self, pool: Pool) -> None:
        """Merge a lone adapter into the base weights; stack several (in mixed mode)."""
        if self.merge_single and len(pool.names) == 1:
            if pool.stacks:
                pool.stacks.close()
                pool.stacks = None
            if not pool.merged:
                pool.model.set_adapter(pool.names[0], inference_mode=True)
                pool.model.merge_adapter()
                pool.merged = True
        elif self.mixed and pool.names:
            self._unmerge(pool)
            pool.stacks = pool.stacks or Stacks(pool.model)
            pool.stacks.build(pool.names)
        if self.precision == "bf16" and pool.names:
            self._twin(pool)

    def _twin(self, pool: Pool) -> None:
        """A bf16 copy of the settled fp32 pool (merged weights, or stacks of its own)."""
        if pool.stacks:
            pool.stacks.close()  # no hooks in the copy
        pool.fast = pool.fast_stacks = None  # the old copy goes first: one copy at a time in memory
        pool.fast = copy.deepcopy(pool.model).to(torch.bfloat16)
        if pool.stacks:
            pool.stacks.build(pool.names)
            pool.fast_stacks = Stacks(pool.fast, fuse=True)
            pool.fast_stacks.build(pool.names)
        pool.close_calls = precisions.CloseCalls()

    # ---- inference ------------------------------------------------------------------------

    @torch.inference_mode()
    def classify(self, items: list[tuple[str, str]]) -> list[dict]:
        """One {label, probs} per (adapter, text), in order. Unknown adapters raise UnknownAdapter."""
        for name, _ in items:
            if name not in self.adapters:
                raise self.unknown(name)
        out: list[dict | None] = [None] * len(items)
        by_pool: dict[tuple, list[int]] = {}
        for i, (name, _) in enumerate(items):
            by_pool.setdefault(self._pool_of[name], []).append(i)
        for key, rows in by_pool.items():
            pool = self._pools[key]
            seqs = self._tokenize([items[i] for i in rows])
            # Gathered requests have random lengths: padding them all to the longest costs more
            # than a few extra forward calls, so run length-sorted chunks with little padding.
            order = sorted(range(len(rows)), key=lambda j: len(seqs[j]))
            for part in padding_bounded_chunks(order, [len(s) for s in seqs], self.max_padding, self.sub_batch):
                names = [self._peft_name[items[rows[j]][0]] for j in part]
                logits = self._forward(pool, [seqs[j] for j in part], names)
                for row, j in enumerate(part):
                    i = rows[j]
                    out[i] = to_results(logits[row:row + 1], self.adapters[items[i][0]].labels)[0]
        return out

    def _tokenize(self, items: list[tuple[str, str]]) -> list[list[int]]:
        # One fast-tokenizer call per max_length (adapters may differ).
        seqs: list[list[int] | None] = [None] * len(items)
        groups: dict[int, list[int]] = {}
        for i, (name, _) in enumerate(items):
            groups.setdefault(self.adapters[name].max_length, []).append(i)
        for max_length, rows in groups.items():
            ids = self.tokenizer([items[i][1] for i in rows], truncation=True, max_length=max_length)["input_ids"]
            for i, ids_i in zip(rows, ids):
                seqs[i] = ids_i
        return seqs

    def _forward(self, pool: Pool, seqs: list[list[int]], names: list[str]) -> torch.Tensor:
        if pool.fast is None:
            return self._pass(pool.model, pool.stacks, seqs, names)
        logits, _ = pool.close_calls.resolve(
            self._pass(pool.fast, pool.fast_stacks, seqs, names),
            lambda rows: self._pass(pool.model, pool.stacks, [seqs[i] for i in rows], [names[i] for i in rows]))
        return logits

    def _pass(self, model: PeftModel, stacks: Stacks | None, seqs: list[list[int]], names: list[str]) -> torch.Tensor:
        batch = collate(seqs, self.tokenizer.pad_token_id)
        if stacks:
            with stacks.rows(names):
                return model(**batch).logits
        if model.active_adapter != names[0]:  # the naive way: one adapter per pass (a merged pool has one)
            model.set_adapter(names[0], inference_mode=True)
        return model(**batch).logits


def _pool_key(name: str, info: AdapterInfo, mixed: bool) -> tuple:
    """(number of labels, PEFT type, None) for the shared pools (PEFT keeps LoRA and AdaLoRA apart);
    DoRA (and LoRA-bias) adapters, which the stacks cannot express, get a pool named after them."""
    try:
        cfg = PeftConfig.from_pretrained(info.path)
    except Exception:  # an unreadable config fails properly when the adapter loads
        return len(info.labels), None, None
    own = mixed and (getattr(cfg, "use_dora", False) or getattr(cfg, "lora_bias", False))
    return len(info.labels), getattr(cfg.peft_type, "value", cfg.peft_type), name if own else None
