"""Reading a classifier's outputs: logits -> a label and the probability of every label."""

import torch


def to_results(logits: torch.Tensor, labels: list[str]) -> list[dict]:
    """One {label, probs} per row of logits."""
    probs = torch.softmax(logits.float(), dim=-1)
    return [
        {"label": labels[int(p.argmax())], "probs": {n: round(float(v), 6) for n, v in zip(labels, p)}}
        for p in probs
    ]
