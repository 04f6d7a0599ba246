"""unit2av.onednn: prepacked CPU products equal nn.Linear's, follow weight changes, stay out of state dicts."""

import pytest
import torch
import torch.nn.functional as F

from unit2av import onednn
from unit2av.activations import ACTIVATIONS, activation

needs_packing = pytest.mark.skipif(not onednn.packing_available(), reason="this PyTorch has no oneDNN prepacking")


@needs_packing
def test_packed_linear_equals_linear_for_any_row_count():
    torch.manual_seed(0)
    lin = onednn.Linear(64, 96)
    lin.pack_(rows=5)
    assert isinstance(lin.packed, onednn.Packed)
    with torch.inference_mode():
        for rows in (1, 5, 13):
            x = torch.randn(rows, 64)
            torch.testing.assert_close(lin(x), F.linear(x, lin.weight, lin.bias), rtol=1e-5, atol=1e-5)
        x3 = torch.randn(2, 3, 64)  # leading dims kept
        assert lin(x3).shape == (2, 3, 96)


@needs_packing
def test_packed_copy_follows_in_place_changes_and_stays_out_of_the_state_dict():
    torch.manual_seed(0)
    lin = onednn.Linear(32, 16)
    lin.pack_(rows=4)
    assert set(lin.state_dict()) == {"weight", "bias"}
    x = torch.randn(4, 32)
    with torch.no_grad():
        lin.weight.mul_(-2.0)  # an in-place change after packing
    with torch.inference_mode():
        torch.testing.assert_close(lin(x), F.linear(x, lin.weight, lin.bias), rtol=1e-5, atol=1e-5)
    other = torch.nn.Linear(32, 16)
    lin.load_state_dict(other.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(lin(x), other(x), rtol=1e-5, atol=1e-5)


@needs_packing
def test_watched_parts_repack_a_fused_weight():
    torch.manual_seed(0)
    parts = [torch.randn(8, 8) for _ in range(3)]
    fused = torch.cat(parts)
    views = [fused[i * 8 : (i + 1) * 8] for i in range(3)]
    packed = onednn.pack(fused, 4, tuple(views))
    x = torch.randn(4, 8)
    views[1].add_(1.0)  # changes the fused matrix through a view
    with torch.inference_mode():
        y = onednn.packed_linear(x, packed, fused, None, tuple(views))
    torch.testing.assert_close(y, x @ fused.T, rtol=1e-5, atol=1e-5)


def test_packed_path_is_skipped_for_gradients_and_other_dtypes():
    lin = onednn.Linear(8, 4)
    lin.pack_(rows=2)
    x = torch.randn(2, 8, requires_grad=True)
    lin(x).sum().backward()  # autograd goes through F.linear
    assert x.grad is not None and x.grad.shape == (2, 8)
    assert not onednn.usable(torch.randn(2, 8, dtype=torch.float64))
    y = lin.double()(torch.randn(2, 8, dtype=torch.float64))
    assert y.dtype == torch.float64


def test_pack_refuses_what_onednn_cannot_take():
    assert onednn.pack(torch.randn(4, 4, dtype=torch.float64), 2) is None


def test_activation_table():
    x = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(activation("gelu_fast")(x), activation("gelu_accurate")(x))
    torch.testing.assert_close(activation("swish")(x), x * torch.sigmoid(x))
    assert set(ACTIVATIONS) >= {"relu", "gelu", "gelu_accurate", "tanh", "linear", "swish"}
    with pytest.raises(ValueError, match="unknown activation_fn 'mish'"):
        activation("mish")


@needs_packing
def test_packed_modules_copy_and_pickle():
    """The opaque packed tensor has no storage; copies and pickles repack from the weight at first use."""
    import copy
    import pickle

    torch.manual_seed(0)
    lin = onednn.Linear(16, 8)
    lin.pack_(rows=3)
    x = torch.randn(3, 16)
    with torch.inference_mode():
        want = lin(x)
        for other in (copy.deepcopy(lin), pickle.loads(pickle.dumps(lin))):
            torch.testing.assert_close(other(x), want, rtol=0, atol=0)
            assert other.packed is not None and other.packed.tensor is not None


def test_concat_linears_shares_storage_and_keeps_state_dicts():
    torch.manual_seed(0)
    q, k, v = (torch.nn.Linear(8, n) for n in (8, 4, 8))
    before = {name: lin.state_dict() for name, lin in zip("qkv", (q, k, v))}
    x = torch.randn(3, 8)
    want = torch.cat([q(x), k(x), v(x)], dim=-1)
    weight, bias = onednn.concat_linears(q, k, v)
    assert weight.shape == (20, 8) and bias.shape == (20,)
    torch.testing.assert_close(F.linear(x, weight, bias), want)
    for name, lin in zip("qkv", (q, k, v)):
        assert set(lin.state_dict()) == {"weight", "bias"}
        assert all(torch.equal(lin.state_dict()[key], before[name][key]) for key in ("weight", "bias"))
    k.load_state_dict({"weight": torch.ones(4, 8), "bias": torch.zeros(4)})  # writes through the views
    assert torch.equal(weight[8:12], torch.ones(4, 8)) and torch.equal(bias[8:12], torch.zeros(4))


@needs_packing
def test_gelu_fuses_into_the_packed_product():
    torch.manual_seed(0)
    lin = onednn.Linear(16, 24)
    x = torch.randn(5, 16)
    want = F.gelu(F.linear(x, lin.weight, lin.bias))
    with torch.inference_mode():
        torch.testing.assert_close(lin(x, gelu=True), want)  # not packed: F.linear + F.gelu
        lin.pack_(rows=5)
        torch.testing.assert_close(lin(x, gelu=True), want, rtol=1e-5, atol=1e-5)
