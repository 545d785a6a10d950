import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from lorakit.training.attention import NAME, sdpa_fast_dropout, use_fast_attention_dropout
from lorakit.training.dropout import fast_dropout, use_fast_dropout


def _qkv_and_padding_mask():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 6, 8) for _ in range(3))
    keys = torch.tensor([[1] * 6, [1] * 4 + [0] * 2], dtype=torch.bool)  # second sequence padded
    return q, k, v, keys[:, None, None, :].expand(2, 1, 6, 6)


def test_it_is_sdpa_attention_with_the_fast_dropout_mask_on_the_probabilities():
    q, k, v, mask = _qkv_and_padding_mask()
    module = nn.Module().train()
    torch.manual_seed(5)
    out, _ = sdpa_fast_dropout(module, q, k, v, mask, scaling=0.3, dropout=0.25)

    scores = (q @ k.transpose(-2, -1) * 0.3).masked_fill(~mask, float("-inf"))
    torch.manual_seed(5)  # the same draws: the mask is the first thing that takes random numbers
    expected = fast_dropout(scores.softmax(-1), 0.25) @ v
    torch.testing.assert_close(out, expected.transpose(1, 2))
    # dropout did act (some probabilities zeroed), and padded keys got no weight
    without, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.3, dropout=0.0)
    assert not torch.allclose(out, without)


def test_evaluation_and_no_dropout_go_to_torch_sdpa_unchanged():
    q, k, v, mask = _qkv_and_padding_mask()
    reference, _ = sdpa_attention_forward(nn.Module().eval(), q, k, v, mask, scaling=0.3, dropout=0.0)
    for module, p in ((nn.Module().eval(), 0.0), (nn.Module().train(), 0.0)):
        out, _ = sdpa_fast_dropout(module, q, k, v, mask, scaling=0.3, dropout=p)
        assert torch.equal(out, reference)


def _tiny_bert():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, attention_probs_dropout_prob=0.3, num_labels=3,
                        attn_implementation="sdpa")
    return BertForSequenceClassification(config)


def test_a_model_switched_to_it_keeps_its_outputs_and_ignores_padding_while_training():
    model = _tiny_bert()
    ids = torch.tensor([[2, 5, 7, 9, 3], [2, 6, 8, 0, 0]])
    attention = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        before = model.eval()(input_ids=ids, attention_mask=attention).logits
    use_fast_dropout(model)
    assert use_fast_attention_dropout(model) and model.config._attn_implementation == NAME
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids, attention_mask=attention).logits, before, atol=1e-6)

    model.train()
    other_padding = ids.clone()
    other_padding[1, 3:] = 11
    runs = []
    for batch in (ids, ids, other_padding):
        torch.manual_seed(1)
        runs.append(model(input_ids=batch, attention_mask=attention).logits)
    assert torch.equal(runs[0], runs[1])  # replays with the seed
    torch.testing.assert_close(runs[0], runs[2])  # what sits in padding does not reach the output
    assert not torch.allclose(runs[0], before)  # dropout is on
    runs[0].sum().backward()
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_only_sdpa_models_are_switched():
    model = _tiny_bert()
    model.set_attn_implementation("eager")
    assert not use_fast_attention_dropout(model)
    assert model.config._attn_implementation == "eager"


def test_under_bf16_autocast_it_matches_torch_sdpa():
    """With a dropout probability too small to drop anything, training-mode outputs and gradients
    through this path and through torch's SDPA agree to bf16 rounding."""
    import copy

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, attention_probs_dropout_prob=1e-9, hidden_dropout_prob=0.0,
                        num_labels=3, attn_implementation="sdpa")
    reference = BertForSequenceClassification(config).train()
    ours = copy.deepcopy(reference)
    assert use_fast_attention_dropout(ours)
    ids = torch.tensor([[2, 5, 7, 9, 3, 4], [2, 6, 8, 11, 0, 0]])
    attention = torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0]])
    results = []
    for model in (reference, ours):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids=ids, attention_mask=attention, labels=torch.tensor([0, 2]))
        out.loss.backward()
        results.append((out.logits.float(), model.bert.encoder.layer[0].attention.self.query.weight.grad))
    for theirs, mine in zip(*results):  # logits, then a query weight's gradient: within 3% of their size
        assert (theirs - mine).abs().max() <= 0.03 * theirs.abs().max(), (theirs, mine)
