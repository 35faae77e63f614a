"""Quantizer and stage-1 losses against the authors' numbers (tests/data/losses.npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from magvit.core.losses.entropy import entropy_loss, separated_entropy
from magvit.core.losses.gan import discriminator_loss, generator_loss
from magvit.core.losses.lecam import LeCam, lecam_loss
from magvit.core.losses.r1 import r1_penalty
from magvit.core.tokenizer.quantizer import VectorQuantizer, perplexity, squared_distances
from magvit.errors import MagvitError

REF = np.load(Path(__file__).parent / "data" / "losses.npz")


def t(name: str) -> torch.Tensor:
    return torch.from_numpy(REF[name])


def reference_quantizer() -> tuple[VectorQuantizer, torch.Tensor]:
    vq = VectorQuantizer(32, 8)
    vq.codebook.data.copy_(t("vq_codebook"))
    z = t("vq_z").unsqueeze(1).permute(0, 4, 1, 2, 3)  # (B, h, w, D) -> (B, D, 1, h, w)
    return vq, z


def test_distances_match_reference():
    d = squared_distances(t("vq_z").reshape(-1, 8), t("vq_codebook"))
    np.testing.assert_allclose(d.numpy().reshape(2, 4, 4, 32), REF["vq_distances"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case, distances", [("a", "vq_distances"), ("b", "entropy_b_distances")])
def test_entropy_terms_match_reference(case, distances):
    sample, avg = separated_entropy(-t(distances), temperature=0.01)
    np.testing.assert_allclose(sample.item(), REF[f"entropy_{case}_sample_entropy"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(avg.item(), REF[f"entropy_{case}_avg_entropy"], rtol=1e-5)
    np.testing.assert_allclose(entropy_loss(-t(distances)).item(), REF[f"entropy_{case}_loss"], rtol=1e-5)


def test_argmax_entropy_matches_reference():
    loss = entropy_loss(-t("entropy_b_distances"), loss_type="argmax")
    np.testing.assert_allclose(loss.item(), REF["entropy_b_loss_argmax"], rtol=1e-5)


def test_quantizer_codes_vectors_and_losses_match_reference():
    vq, z = reference_quantizer()
    quantized, aux = vq(z)
    assert torch.equal(aux["codes"][:, 0], t("vq_encoding_indices"))
    np.testing.assert_allclose(quantized[:, :, 0].permute(0, 2, 3, 1).detach().numpy(),
                               REF["vq_quantized"], atol=1e-6)
    for ours, theirs in [("commitment_loss", "vq_e_latent_loss"), ("codebook_loss", "vq_q_latent_loss"),
                         ("entropy_loss", "vq_entropy_loss"), ("quantizer_loss", "vq_quantizer_loss")]:
        np.testing.assert_allclose(aux[ours].item(), REF[theirs], rtol=1e-5, err_msg=ours)


def test_quantizer_stays_fp32_under_bf16_autocast():
    vq, z = reference_quantizer()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        quantized, aux = vq(z.bfloat16())
    assert aux["quantizer_loss"].dtype == torch.float32
    assert quantized.dtype == torch.bfloat16
    # The codes are chosen on fp32 distances of the bf16 latents: same as fp32 here.
    assert torch.equal(aux["codes"][:, 0], t("vq_encoding_indices"))


def test_straight_through_gradient_reaches_the_encoder_and_codebook():
    vq, z = reference_quantizer()
    z.requires_grad_(True)
    quantized, aux = vq(z)
    (quantized.sum() + aux["quantizer_loss"]).backward()
    assert z.grad is not None and vq.codebook.grad is not None
    # d(sum q)/dz is 1 everywhere through the straight-through estimator, plus the loss terms
    assert float(z.grad.abs().min()) > 0


def test_usage_perplexity_dead_codes_and_restart():
    vq, z = reference_quantizer()
    _, aux = vq(z)
    vq.record_usage(aux["codes"])
    used = set(aux["codes"].flatten().tolist())
    assert set(vq.dead_codes().tolist()) == set(range(32)) - used
    counts = torch.bincount(aux["codes"].flatten(), minlength=32).float() / 32
    expected = torch.exp(-(counts[counts > 0] * counts[counts > 0].log()).sum())
    assert aux["perplexity"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert perplexity(torch.arange(8), 16).item() == pytest.approx(8.0, rel=1e-6)
    restarted = vq.restart_dead_codes(z, generator=torch.Generator().manual_seed(0))
    assert set(restarted.tolist()) == set(range(32)) - used
    latents = z.permute(0, 2, 3, 4, 1).reshape(-1, 8)
    for code in set(range(32)) - used:  # every dead code now sits on an encoder output
        assert (latents - vq.codebook[code]).abs().sum(-1).min().item() == 0.0
    assert float(vq.hits.sum()) == 0.0


def test_lecam_matches_reference():
    for row, expected in zip(t("lecam_inputs"), REF["lecam_loss"]):
        assert lecam_loss(*row).item() == pytest.approx(float(expected), rel=1e-6, abs=1e-7)


def test_lecam_tracks_ema_of_mean_logits():
    reg = LeCam(decay=0.5)
    loss = reg(torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0]))
    assert reg.ema_real.item() == 1.0 and reg.ema_fake.item() == -0.5  # 0.5*0 + 0.5*mean
    assert loss.item() == pytest.approx((2.0 + 0.5) ** 2 + (1.0 + 1.0) ** 2)


def test_gan_losses_are_non_saturating():
    zero = torch.zeros(4)
    assert generator_loss(zero).item() == pytest.approx(np.log(2))
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * np.log(2))
    assert generator_loss(torch.full((2,), 20.0)).item() < 1e-8
    assert discriminator_loss(torch.full((2,), 20.0), torch.full((2,), -20.0)).item() < 1e-8


def test_r1_penalty_of_a_linear_critic_is_cost_times_weight_norm():
    w = torch.randn(3, 2, 4, 4)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731 - gradient is w for every clip
    penalty, logits = r1_penalty(critic, torch.rand(5, 3, 2, 4, 4), cost=10.0)
    assert penalty.item() == pytest.approx(10.0 * w.pow(2).sum().item(), rel=1e-5)
    assert logits.shape == (5,)


def test_perceptual_plugin_loads_user_weights_and_compares_frames(tmp_path):
    import magvit
    torch.manual_seed(0)  # random weights in torchvision's vgg16 `features.N.*` layout
    layout = torch.nn.Sequential(*[torch.nn.Conv2d(i, o, 3, padding=1) if o else torch.nn.Identity()
                                   for i, o in _vgg_layers()])
    state = {f"features.{k}": v for k, v in layout.state_dict().items()}
    from safetensors.torch import save_file

    save_file(state, tmp_path / "vgg16.safetensors")
    loss = magvit.registries().perceptual_losses.create("vgg16", weights=str(tmp_path / "vgg16.safetensors"))
    video = torch.rand(1, 3, 2, 32, 32)
    assert loss(video, video).item() == 0.0
    assert loss(video, video.flip(-1)).item() > 0.0
    assert not any(p.requires_grad for p in loss.parameters())
    with pytest.raises(MagvitError, match="perceptual loss weights 'nope.pt' not found"):
        magvit.registries().perceptual_losses.create("vgg16", weights="nope.pt")


def _vgg_layers():
    """(in, out) per torchvision vgg16 `features` index; out 0 marks a ReLU or pool slot."""
    from magvit.core.losses.perceptual import _VGG16

    layers, ch = [], 3
    for item in _VGG16:
        if item == "M":
            layers.append((ch, 0))
        else:
            layers += [(ch, item), (item, 0)]
            ch = item
    return layers
