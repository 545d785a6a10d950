import copy

import pytest
import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import BertConfig, BertForSequenceClassification

from lorakit.training.dropout import use_fast_dropout
from lorakit.training import fused_lora
from lorakit.training.fused_lora import use_fused_lora
from lorakit.model.peft import frozen_base_in_bf16


def _pair(**lora):
    """Two identical LoRA'd tiny BERTs with the fast dropout; the second with the fused layers."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, num_labels=3)
    base = BertForSequenceClassification(config)
    settings = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.2, "target_modules": ["query", "value", "dense"], **lora}
    peft = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, **settings))
    for name, p in peft.named_parameters():  # B starts at zero: give the branch something to carry
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    use_fast_dropout(peft)
    fused = copy.deepcopy(peft)
    return peft, fused, use_fused_lora(fused)


def _step(model, seed):
    ids = torch.tensor([[2, 5, 7, 9, 3, 4], [2, 6, 8, 11, 0, 0]])
    attention = torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0]])
    torch.manual_seed(seed)
    loss = model(input_ids=ids, attention_mask=attention, labels=torch.tensor([0, 2])).loss
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


def _count_fused_calls(monkeypatch) -> list:
    calls = []
    forward = fused_lora._LoraBranch.forward
    monkeypatch.setattr(fused_lora._LoraBranch, "forward", staticmethod(lambda *a: calls.append(1) or forward(*a)))
    return calls


@pytest.mark.parametrize("lora", [{}, {"use_rslora": True}, {"lora_dropout": 0.0}])
def test_the_fused_step_is_the_peft_step(lora, monkeypatch):
    peft, fused, n = _pair(**lora)
    assert n == 2 * (2 + 3) + 1  # per layer query, value and three dense; plus the pooler's dense
    peft.train(), fused.train()
    calls = _count_fused_calls(monkeypatch)
    for seed in (1, 2):  # same seed, same dropout masks: same loss and gradients
        (loss_a, grads_a), (loss_b, grads_b) = _step(peft, seed), _step(fused, seed)
        torch.testing.assert_close(loss_a, loss_b)
        assert grads_a.keys() == grads_b.keys()
        for name in grads_a:
            torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-6, msg=name)
        assert all(g.abs().sum() > 0 for n, g in grads_b.items() if "lora_A" in n)
        peft.zero_grad(), fused.zero_grad()
    assert len(calls) == 2 * n  # every layer, both steps, took the fused path


def test_the_fused_step_under_bf16_autocast_matches_peft_to_bf16_rounding(monkeypatch):
    peft, fused, n = _pair()
    for model in (peft, fused):
        frozen_base_in_bf16(model)
        model.train()
    calls = _count_fused_calls(monkeypatch)
    (loss_a, grads_a), (loss_b, grads_b) = _step(peft, 3), _step(fused, 3)
    torch.testing.assert_close(loss_a, loss_b, rtol=2e-2, atol=2e-2)
    for name in grads_a:
        assert grads_b[name].dtype == torch.float32  # adapters train in fp32
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=0.1, atol=2e-3, msg=name)
    assert len(calls) == n


def test_evaluation_and_other_layers_keep_pefts_forward(monkeypatch):
    peft, fused, _ = _pair()
    calls = _count_fused_calls(monkeypatch)
    ids = torch.tensor([[2, 5, 7, 9]])
    with torch.no_grad():
        assert torch.equal(peft.eval()(input_ids=ids).logits, fused.eval()(input_ids=ids).logits)
    _, dora, n = _pair(use_dora=True)
    dora.train()
    assert n > 0  # patched, but DoRA layers go to PEFT's forward, which trains them
    _, grads = _step(dora, 0)
    assert any("magnitude" in name and g.abs().sum() > 0 for name, g in grads.items())
    _, trained_bias, _ = _pair(bias="lora_only")  # a base bias that trains: PEFT's forward too
    _, grads = _step(trained_bias.train(), 0)
    assert any(name.endswith("query.base_layer.bias") and g.abs().sum() > 0 for name, g in grads.items())
    assert not calls


@pytest.mark.skipif(fused_lora._onednn_linear is None, reason="torch built without oneDNN")
def test_frozen_weights_packed_for_onednn_give_the_same_step_and_follow_weight_changes(monkeypatch):
    _, fused, _ = _pair()
    frozen_base_in_bf16(fused)
    fused.train()

    def step_both_ways():
        out = []
        for onednn in (fused_lora._onednn_linear, None):
            monkeypatch.setattr(fused_lora, "_onednn_linear", onednn)
            fused.zero_grad(set_to_none=True)
            loss, grads = _step(fused, 5)
            out.append((loss, {n: g.clone() for n, g in grads.items()}))
        monkeypatch.undo()
        return out

    (loss_p, grads_p), (loss_u, grads_u) = step_both_ways()
    query = fused.base_model.model.bert.encoder.layer[0].attention.self.query
    assert query.base_layer in fused_lora._PACKED  # the packed path ran
    torch.testing.assert_close(loss_p, loss_u, rtol=0, atol=0)
    for name in grads_p:
        torch.testing.assert_close(grads_p[name], grads_u[name], rtol=0, atol=0, msg=name)
    with torch.no_grad():  # a frozen weight changed in place: packed again, not served stale
        query.base_layer.weight.mul_(3)
    (loss_p2, _), (loss_u2, _) = step_both_ways()
    assert loss_p2 != loss_p
    torch.testing.assert_close(loss_p2, loss_u2, rtol=0, atol=0)
