"""The typed run configuration: a YAML recipe plus ``key=value`` overrides, validated by pydantic.

Every field has a docstring; a wrong key or value is reported as ``section.key: what is wrong``.
"""

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from lorakit import tasks
from lorakit.data.args import DataArgs, Section
from lorakit.data.builtin import BUILTIN
from lorakit.errors import ConfigError

class LoraArgs(Section):
    method: Literal["lora", "rslora", "dora", "adalora"] = "lora"
    """Adapter method: lora, rslora (alpha/sqrt(r) scaling), dora (weight-decomposed), adalora (adaptive ranks)."""
    r: int = Field(8, gt=0)
    """Rank of the update matrices."""
    alpha: float = Field(16, gt=0)
    """Scaling numerator: the update is scaled by alpha/r (alpha/sqrt(r) for rslora)."""
    dropout: float = Field(0.1, ge=0, lt=1)
    """Dropout on the adapter input."""
    target_modules: list[str] | Literal["auto", "all-linear"] = "auto"
    """Module names to adapt; 'auto' = the architecture's attention and feed-forward projections."""
    adalora_init_r: int = Field(12, gt=0)
    """AdaLoRA: starting rank of every module; ranks are then pruned towards an average of r."""
    adalora_tinit: float = Field(0.1, ge=0, lt=1)
    """AdaLoRA: share of steps before rank pruning starts."""
    adalora_tfinal: float = Field(0.2, ge=0, lt=1)
    """AdaLoRA: share of final steps with the rank pattern fixed."""
    adalora_delta_t: int = Field(10, gt=0)
    """AdaLoRA: steps between two rank reallocations."""


class DistributedArgs(Section):
    strategy: Literal["ddp", "fsdp", "deepspeed"] = "ddp"
    """How processes share the model: ddp (each holds all of it), fsdp or deepspeed (sharded; GPUs only)."""
    fsdp_version: Literal[1, 2] = 2
    """FSDP: 2 = per-parameter sharding (torch fully_shard); 1 = the older flat-parameter FSDP."""
    reshard_after_forward: bool = True
    """FSDP: free gathered weights after each forward (least memory); false keeps them for the backward (faster)."""
    auto_wrap: Literal["transformer", "none"] = "transformer"
    """FSDP: shard each transformer layer as its own unit, or the whole model as one."""
    zero_stage: Literal[1, 2, 3] = 2
    """DeepSpeed ZeRO stage: 1 shards optimizer state, 2 also gradients, 3 also weights."""
    cpu_offload: bool = False
    """FSDP and DeepSpeed: keep sharded optimizer state (and weights, FSDP / ZeRO-3) in CPU memory."""


class TrainArgs(Section):
    epochs: int = Field(3, gt=0)
    """Passes over the training split."""
    batch_size: int = Field(32, gt=0)
    """Examples per optimizer step, over all processes (gradient accumulation makes up the difference)."""
    micro_batch_size: int | None = Field(None, gt=0)
    """Examples per forward pass in one process (default: batch_size / processes)."""
    max_tokens_per_pass: int | None = Field(2048, gt=0)
    """Padded tokens per forward pass: batches of long texts run in several passes (bounds memory; null: no cap).
    Training passes of texts past 128 tokens hold fewer: attention maps grow with the width (see pass_tokens)."""
    lr: float = Field(1e-3, gt=0)
    """Peak learning rate (AdamW)."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay on adapter weights."""
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    """Share of steps with linear warm-up."""
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    """Learning-rate decay after warm-up."""
    max_grad_norm: float | None = Field(1.0, gt=0)
    """Clip the gradient norm to this value (null: no clipping)."""
    metric: str | None = None
    """Validation metric that selects the best epoch (default: the task's first; classification: accuracy, macro_f1)."""
    early_stopping: int | None = Field(None, gt=0)
    """Stop after this many epochs without a better validation metric (null: never)."""
    checkpoint_every: int = Field(100, ge=0)
    """Save a resumable checkpoint every this many steps (0: only at the end of each epoch)."""
    eval_batch_size: int = Field(128, gt=0)
    """Examples per forward pass in evaluation."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Mixed precision (auto: bf16 on GPUs that support it and CPUs with AMX / AVX-512 BF16, fp32 elsewhere).
    On a CPU, bf16 keeps the frozen base in bf16 and the trained weights in fp32; fp16 is GPU-only."""
    threads: int | None = Field(None, gt=0)
    """CPU threads for torch (default: all cores)."""
    seed: int = 0
    """Seed of initialisation, dropout and batch order."""
    distributed: DistributedArgs = DistributedArgs()


class RunConfig(Section):
    task: str = tasks.DEFAULT
    """What is trained: classification, or causal-lm (text generation)."""
    name: str = "run"
    """Run folder name under out_dir."""
    out_dir: str = "runs"
    """Where run folders are created."""
    base: str = "minilm"
    """Installed base model name (lorakit list), or a path to an HF-format folder (default: the task's; causal-lm: smollm2)."""
    data: DataArgs  # the task's data section: see config_class
    lora: LoraArgs = LoraArgs()
    train: TrainArgs = TrainArgs()

    @field_validator("name")
    @classmethod
    def _flat_name(cls, v: str) -> str:
        if not v or "/" in v or v.startswith("."):
            raise ValueError("must be a plain folder name (no '/', not starting with '.')")
        return v

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        if v not in tasks.TASKS:
            raise ValueError(f"unknown task (known: {', '.join(tasks.TASKS)})")
        return v

    @model_validator(mode="after")
    def _task_metric(self):
        metrics = tasks.get(self.task).metrics
        if self.train.metric is None:
            self.train.metric = next(iter(metrics))
        elif self.train.metric not in metrics:
            raise ValueError(f"train.metric {self.train.metric!r} is not a {self.task} metric "
                             f"(use one of: {', '.join(metrics)})")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name

    def with_absolute_paths(self) -> "RunConfig":
        """A copy whose data files and base folder are absolute: a run must not depend on the folder
        its later commands start from."""
        cfg = self.model_copy(deep=True)
        if cfg.data.dataset not in BUILTIN and Path(cfg.data.dataset).expanduser().exists():
            cfg.data.dataset = str(Path(cfg.data.dataset).expanduser().resolve())
        if cfg.data.path is not None:
            cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
        base = Path(cfg.base).expanduser()
        if ("/" in cfg.base or cfg.base.startswith(".")) and base.exists():
            cfg.base = str(base.resolve())
        return cfg


@cache
def config_class(task: str) -> type[RunConfig]:
    """RunConfig whose ``data`` section is the task's own."""
    t = tasks.get(task)
    return create_model(f"{t.data_args.__name__}RunConfig", __base__=RunConfig, data=(t.data_args, t.data_args()),
                        base=(str, t.default_base))


def _format(err: ValidationError, cls: type[RunConfig]) -> str:
    e = err.errors()[0]
    key = ".".join(str(p) for p in e["loc"])
    if e["type"] == "extra_forbidden":
        section = cls
        for part in e["loc"][:-1]:
            section = section.model_fields[str(part)].annotation
        allowed = ", ".join(section.model_fields)
        return f"unknown key {key!r} (allowed here: {allowed})"
    if not e["loc"]:  # a check across sections (RunConfig's model validators)
        return e["msg"].removeprefix("Value error, ")
    got = e.get("input")
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{key}: {e['msg'].lower()}, got {got!r}{more}"


def _set(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {p!r} is not a section")
    node[leaf] = value


def load_config(recipe: str | Path | None = None, overrides: list[str] | dict | None = None) -> RunConfig:
    """Read a YAML recipe, apply ``key=value`` overrides (values parsed as YAML), validate."""
    tree: dict = {}
    if recipe is not None:
        path = find_recipe(recipe)
        try:
            tree = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}:{where} is not valid YAML") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"{path}: a recipe must be a mapping of keys to values")
    if isinstance(overrides, dict):  # Python API: values are already typed
        items = list(overrides.items())
    else:  # command line: key=value, value parsed as YAML
        items = [(k, yaml.safe_load(v) if v != "" else None) for k, v in map(_split, overrides or [])]
    for key, value in items:
        _set(tree, key, value)
    task = tree.get("task", tasks.DEFAULT)
    if not isinstance(task, str) or task not in tasks.TASKS:
        raise ConfigError(f"task: unknown task {task!r}", f"use one of: {', '.join(tasks.TASKS)}")
    cls = config_class(task)
    try:
        return cls.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_format(e, cls), "see docs/recipes.md for the keys") from None


def packaged_recipes() -> dict[str, Path]:
    """The recipes shipped inside the package, by name (recipes/ at the top of the source tree is the same)."""
    root = files("lorakit") / "recipes"
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def find_recipe(recipe: str | Path) -> Path:
    """A recipe file, or the name of a packaged recipe (``tweets-sentiment``)."""
    path = Path(recipe).expanduser()
    if path.is_file():
        return path
    named = packaged_recipes()
    if str(recipe).removesuffix(".yaml") in named and not path.parent.name:
        return named[str(recipe).removesuffix(".yaml")]
    if path.name.removesuffix(".yaml") in named:  # recipes/NAME.yaml from outside the source tree
        return named[path.name.removesuffix(".yaml")]
    raise ConfigError(f"recipe {str(recipe)!r} not found",
                      f"give a recipe file, or a packaged recipe: {', '.join(sorted(named))}")


def _split(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not key=value", "e.g. train.lr=5e-4 data.limit=2000")
    return key.strip(), value


def save_config(cfg: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False))
