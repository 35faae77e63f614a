"""The context-free reference of the held-out eval: the entropy of the masked codes."""

import math

import pytest
import torch
import torch.nn.functional as F

from magvit.workflows.commit_eval import code_entropy


def test_entropy_of_k_equally_frequent_codes_is_ln_k():
    assert code_entropy(torch.tensor([3, 7, 3, 7, 11, 11])) == pytest.approx(math.log(3))
    assert code_entropy(torch.tensor([[5, 5], [5, 5]])) == 0.0


def test_entropy_equals_the_cross_entropy_of_predicting_the_code_frequencies():
    codes = torch.randint(0, 16, (500,), generator=torch.Generator().manual_seed(0)) % 9
    freq = torch.bincount(codes, minlength=16).double() / codes.numel()
    logits = freq.clamp_min(1e-30).log().expand(codes.numel(), -1)
    assert code_entropy(codes) == pytest.approx(float(F.cross_entropy(logits, codes)), rel=1e-9)
    # and it beats the uniform guess
    assert code_entropy(codes) < float(F.cross_entropy(torch.zeros(500, 16), codes))


def test_entropy_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one code"):
        code_entropy(torch.tensor([], dtype=torch.long))
