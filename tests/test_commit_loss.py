"""The COMMIT loss of Eq. 3/4: per-example weighted CE, label smoothing 1e-4, in fp32."""

import math

import pytest
import torch

from magvit.core.commit_loss import commit_loss, per_example_commit_loss


def random_case(batch=3, n=10, c=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, n, c, generator=g), torch.randint(0, c, (batch, n), generator=g),
            (torch.rand(batch, n, generator=g) > 0.3).float() + 0.01)


def test_uniform_logits_give_log_codebook_size():
    logits = torch.zeros(2, 5, 1024)
    loss = commit_loss(logits, torch.randint(0, 1024, (2, 5)), torch.ones(2, 5))
    assert loss.item() == pytest.approx(math.log(1024), abs=1e-5)


def test_matches_hand_computed_smoothed_cross_entropy():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]])
    targets = torch.tensor([[0, 1]])
    weights = torch.tensor([[1.0, 3.0]])
    eps = 1e-4
    logp = logits.log_softmax(-1)[0]
    ce = [(1 - eps) * -logp[i, t] + eps * -logp[i].mean() for i, t in enumerate([0, 1])]
    expected = (ce[0] * 1.0 + ce[1] * 3.0) / 4.0
    assert commit_loss(logits, targets, weights).item() == pytest.approx(expected.item(), rel=1e-6)
    assert commit_loss(logits, targets, weights, label_smoothing=0.0).item() == pytest.approx(
        ((-logp[0, 0] + 3 * -logp[1, 1]) / 4).item(), rel=1e-6)


def test_each_example_is_normalised_by_its_own_weights():
    logits, targets, _ = random_case(batch=2)
    weights = torch.zeros(2, 10)
    weights[0, :2] = 1.0
    weights[1, :] = 1.0
    per_example = per_example_commit_loss(logits, targets, weights)
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none",
                                           label_smoothing=1e-4)
    torch.testing.assert_close(per_example, torch.stack([ce[0, :2].mean(), ce[1].mean()]))
    assert commit_loss(logits, targets, weights).item() == pytest.approx(per_example.mean().item())


def test_zero_weight_positions_do_not_matter_and_shifts_do_not_either():
    logits, targets, weights = random_case()
    weights[:, 4] = 0.0
    base = commit_loss(logits, targets, weights)
    moved = logits.clone()
    moved[:, 4] = 100 * torch.randn_like(moved[:, 4])
    assert commit_loss(moved, targets, weights).item() == pytest.approx(base.item(), rel=1e-6)
    assert commit_loss(logits + 7.5, targets, weights).item() == pytest.approx(base.item(), rel=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_loss_is_nonnegative_and_near_zero_only_for_confident_right_answers(seed):
    logits, targets, weights = random_case(seed=seed)
    assert commit_loss(logits, targets, weights) > 0
    confident = torch.nn.functional.one_hot(targets, 16).float() * 30.0
    loss = commit_loss(confident, targets, weights).item()
    # The smoothing floor: eps * mean over the other codes of 30 nats.
    assert loss == pytest.approx(1e-4 * 30.0 * 15 / 16, rel=1e-2)


def test_bf16_logits_are_reduced_in_float32_under_autocast():
    logits, targets, weights = random_case()
    half = logits.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = commit_loss(half, targets, weights)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(commit_loss(half.float(), targets, weights).item(), rel=1e-6)


def test_bad_inputs_are_refused_with_a_reason():
    logits, targets, weights = random_case()
    with pytest.raises(ValueError, match=r"must agree on \(batch, positions\)"):
        commit_loss(logits, targets[:, :5], weights)
    weights[1] = 0.0
    with pytest.raises(ValueError, match="at least one position with a positive weight"):
        commit_loss(logits, targets, weights)

