"""Helpers for the store tests: snapshot the store, check one-line errors, build weight files by hand."""

import hashlib
import json
import struct
from pathlib import Path


def store_state() -> dict:
    """Every path under the store (lock files and caches included) with its content hash or link target."""
    from lorakit.store import home

    state = {}
    for p in sorted(home().rglob("*")) if home().exists() else ():
        rel = p.relative_to(home()).as_posix()
        if p.is_symlink():
            state[rel] = "->" + str(p.readlink())
        elif p.is_file():
            state[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            state[rel] = "dir"
    return state


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


def raw_safetensors(path: Path, header: dict, data: bytes = b"", header_len: int | None = None) -> Path:
    """Write a safetensors file byte by byte, so tests can make it as wrong as they like."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + data)
    return path


def make_peft_adapter(base_dir: Path, out: Path, num_labels: int = 3, **lora) -> Path:
    """An adapter made the plain-PEFT way on a sequence classifier of ``base_dir``."""
    import torch
    from peft import AdaLoraConfig, LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=num_labels)
    kind = lora.pop("kind", "lora")
    targets = lora.pop("target_modules", ["query", "value"])
    if kind == "adalora":
        cfg = AdaLoraConfig(task_type=TaskType.SEQ_CLS, init_r=6, target_r=4, total_step=10,
                            target_modules=targets, **lora)
    else:
        cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=targets,
                         use_dora=kind == "dora", use_rslora=kind == "rslora", **lora)
    peft_model = get_peft_model(model, cfg)
    with torch.no_grad():  # non-zero B, so that the adapter changes outputs
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    peft_model.save_pretrained(out)
    return out
