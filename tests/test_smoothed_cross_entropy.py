"""The fused label-smoothed cross-entropy equals torch's, values and gradients, in every dtype."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from magvit.core.losses.smoothed_cross_entropy import smoothed_cross_entropy


def _case(n=37, c=53, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(n, c, generator=g)).to(dtype).requires_grad_(True)
    targets = torch.randint(0, c, (n,), generator=g)
    weights = torch.rand(n, generator=g)  # a non-uniform upstream gradient
    return logits, targets, weights


@pytest.mark.parametrize("eps", [0.0, 1e-4, 0.1, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_and_gradients_equal_torch_cross_entropy(eps, dtype):
    logits, targets, weights = _case(dtype=dtype)
    ours = smoothed_cross_entropy(logits, targets, eps)
    (grad_ours,) = torch.autograd.grad((ours * weights.to(dtype)).sum(), logits)
    theirs = F.cross_entropy(logits, targets, reduction="none", label_smoothing=eps)
    (grad_theirs,) = torch.autograd.grad((theirs * weights.to(dtype)).sum(), logits)
    assert ours.shape == (37,) and ours.dtype == dtype  # fp32 at least (fp64 stays fp64)
    assert grad_ours.shape == logits.shape and grad_ours.dtype == dtype
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=1e-5, atol=1e-6)


def test_bf16_logits_are_computed_in_fp32_and_get_a_bf16_gradient():
    logits, targets, weights = _case(n=64, c=300, dtype=torch.bfloat16)
    ours = smoothed_cross_entropy(logits, targets, 1e-4)
    (grad,) = torch.autograd.grad((ours * weights).sum(), logits)
    reference = logits.detach().float().requires_grad_(True)
    theirs = F.cross_entropy(reference, targets, reduction="none", label_smoothing=1e-4)
    (grad_ref,) = torch.autograd.grad((theirs * weights).sum(), reference)
    assert ours.dtype == torch.float32 and grad.dtype == torch.bfloat16
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)  # the same bf16 inputs, fp32 maths
    torch.testing.assert_close(grad.float(), grad_ref, rtol=1e-2, atol=1e-3)  # bf16 rounding only


def test_gradcheck_in_float64():
    logits, targets, _ = _case(n=5, c=7, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda z: smoothed_cross_entropy(z, targets, 0.2), (logits,))


@pytest.mark.parametrize("seed", range(5))
def test_each_rows_gradient_sums_to_zero_and_the_loss_is_at_least_the_targets_entropy(seed):
    # p and the smoothed target both sum to one, so every row's gradient sums to zero; and
    # cross-entropy is never below the smoothed target's own entropy.
    eps, c = 0.3, 11
    logits, targets, _ = _case(n=20, c=c, dtype=torch.float64, seed=seed)
    loss = smoothed_cross_entropy(logits, targets, eps)
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    torch.testing.assert_close(grad.sum(dim=1), torch.zeros(20, dtype=torch.float64), atol=1e-12, rtol=0)
    q_true, q_other = 1 - eps + eps / c, eps / c
    entropy = -(q_true * torch.log(torch.tensor(q_true)) + (c - 1) * q_other * torch.log(torch.tensor(q_other)))
    assert bool((loss >= entropy.float() - 1e-5).all())


def test_a_nan_logit_gives_a_non_finite_loss_not_a_silent_number():
    logits, targets, _ = _case(n=3, c=4)
    logits = logits.detach().clone()
    logits[0, 0] = float("nan")
    assert not torch.isfinite(smoothed_cross_entropy(logits, targets, 1e-4)[0])


@pytest.mark.parametrize(("logits", "targets", "eps", "message"), [
    (torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long), 0.0, r"logits must be \(N, C\) and targets \(N,\), got \(2, 3, 4\)"),
    (torch.zeros(2, 3), torch.zeros(3, dtype=torch.long), 0.0, r"got \(2, 3\) and \(3,\)"),
    (torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 1.5, r"label_smoothing must be in \[0, 1\], got 1.5"),
    (torch.zeros(2, 3), torch.tensor([0, 3]), 0.0, r"targets must lie in \[0, 3\), got values from 0 to 3"),
    (torch.zeros(2, 3), torch.tensor([-1, 2]), 0.0, r"got values from -1 to 2"),
])
def test_bad_inputs_are_refused_with_the_shapes_and_values(logits, targets, eps, message):
    with pytest.raises(ValueError, match=message):
        smoothed_cross_entropy(logits, targets, eps)
