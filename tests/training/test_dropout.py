import pytest
import torch
from torch import nn

from lorakit.training.dropout import FastDropout, _lanes, use_fast_dropout


@pytest.mark.parametrize("p, bits", [(0.1, 8), (0.5, 8), (0.01, 16), (0.3, 8)])
def test_fast_dropout_is_a_bernoulli_mask_scaled_to_keep_the_mean(p, bits):
    torch.manual_seed(0)
    x = torch.ones(1000, 1000)
    y = FastDropout(p).train()(x)
    kept = (y != 0).float().mean().item()
    # the drop probability is p rounded to 1/256 when that is within 2% of p, else to 1/65536
    lane_bits, drop_count = _lanes(p)
    drop = drop_count / 2**lane_bits
    assert lane_bits == bits and abs(drop - p) <= 0.02 * p
    assert abs(kept - (1 - drop)) < 0.003  # 1e6 draws: the standard error is under 0.0005
    assert torch.all((y == 0) | torch.isclose(y, torch.tensor(1 / (1 - drop))))
    assert abs(y.mean().item() - 1) < 0.005  # unbiased: E[y] = x
    # rows are not copies of each other (the lanes of one draw are independent bits)
    assert not torch.equal(y[0], y[1])


def test_fast_dropout_replays_with_the_torch_seed_and_is_identity_in_eval():
    d = FastDropout(0.1).train()
    x = torch.randn(37, 11)  # an element count that is not a multiple of 4
    torch.manual_seed(3)
    a = d(x)
    torch.manual_seed(3)
    assert torch.equal(a, d(x))
    assert d.eval()(x) is x and FastDropout(0.0).train()(x) is x


def test_gradient_flows_through_kept_elements_only():
    torch.manual_seed(0)
    x = torch.randn(64, 64, requires_grad=True)
    y = FastDropout(0.3).train()(x)
    y.sum().backward()
    assert torch.equal(x.grad == 0, y == 0)


def test_use_fast_dropout_swaps_every_dropout():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2), nn.Sequential(nn.Dropout(0.1), nn.ReLU())).eval()
    assert use_fast_dropout(model) == 2
    assert not any(m.training for m in model.modules())  # the new layers keep the mode of those replaced
    assert [m.p for m in model.modules() if isinstance(m, FastDropout)] == [0.2, 0.1]
    assert not any(type(m) is nn.Dropout for m in model.modules())
