"""Packed training rows: each example sees only itself (attention and positions), so its logits and
loss are those it has alone in an unpacked batch."""

import pytest
import torch
from helpers import make_tiny_causal_lm

from lorakit.tasks.causal_lm.model import collate, pack
from lorakit.tasks.causal_lm.template import IGNORE


def test_rows_are_filled_longest_first_within_the_width():
    seqs = [[1] * n for n in (5, 3, 8, 2, 6)]
    rows = pack(seqs, 8)
    assert sorted(i for r in rows for i in r) == list(range(5))
    assert all(sum(len(seqs[i]) for i in r) <= 8 for r in rows)
    assert rows == [[2], [4, 3], [0, 1]]


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_a_packed_example_has_the_logits_and_loss_it_has_alone(tmp_path, kind):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(make_tiny_causal_lm(tmp_path / kind, kind)).eval()
    g = torch.Generator().manual_seed(0)
    seqs = [torch.randint(3, 30, (n,), generator=g).tolist() for n in (9, 4, 6, 3, 12)]
    labels = [[IGNORE] * (len(s) // 2) + s[len(s) // 2:] for s in seqs]
    packed = collate(seqs, labels, pad_id=2, packed=True)
    plain = collate(seqs, labels, pad_id=2)
    assert packed["input_ids"].shape[0] < plain["input_ids"].shape[0]
    with torch.no_grad():
        out_packed = model(**packed, use_cache=False)
        out_plain = model(**plain, use_cache=False)
    rows = pack(seqs, packed["input_ids"].shape[1])
    for row, members in enumerate(rows):
        at = 0
        for i in members:
            n = len(seqs[i])
            torch.testing.assert_close(out_packed.logits[row, at: at + n], out_plain.logits[i, :n], atol=1e-5, rtol=1e-4)
            at += n
    torch.testing.assert_close(out_packed.loss, out_plain.loss, atol=1e-5, rtol=1e-5)
