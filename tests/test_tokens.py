"""Vocabulary ids and the transformer input sequence."""

from __future__ import annotations

import pytest
import torch

from magvit.core.tokens import Vocabulary, build_sequence
from magvit.errors import MagvitError

TASKS = ("fp", "fi", "opc", "opv", "oph", "opd", "ipc", "ipd", "cg", "cfp")


def test_ids_of_a_ucf101_multitask_vocabulary():
    vocab = Vocabulary(1024, 101, TASKS)
    assert vocab.class_id(0) == 1024 and vocab.class_id(100) == 1124
    assert vocab.uncond_id == 1125
    assert vocab.mask_id == 1126
    assert [vocab.prompt_id(t) for t in ("fp", "cfp")] == [1127, 1136]
    assert vocab.size == 1137
    assert vocab.prefix_length == 2


def test_property_special_ids_never_collide_with_codes_or_each_other():
    for codebook, classes, n_tasks in [(1, 0, 0), (16, 3, 2), (1024, 101, 10), (8192, 0, 1)]:
        vocab = Vocabulary(codebook, classes, tuple(f"t{i}" for i in range(n_tasks)))
        special = [vocab.uncond_id, vocab.mask_id] + [vocab.prompt_id(t) for t in vocab.task_names]
        ids = [vocab.class_id(c) for c in range(classes)] + special
        assert min(ids) >= codebook
        assert len(set(ids)) == len(ids) == vocab.size - codebook


def test_build_sequence_multitask_prefix():
    vocab = Vocabulary(1024, 101, TASKS)
    latent = torch.tensor([[5, 6, 7], [8, 9, 10]])
    seq = build_sequence(vocab, latent, "opd", torch.tensor([3, -1]))
    assert seq.tolist() == [[1132, 1027, 5, 6, 7], [1132, 1125, 8, 9, 10]]


def test_build_sequence_single_task_has_only_class_prefix():
    vocab = Vocabulary(16, 2)
    assert vocab.prefix_length == 1
    seq = build_sequence(vocab, torch.tensor([[1, vocab.mask_id]]), None, None)
    assert seq.tolist() == [[18, 1, 19]]


def test_errors_name_the_problem():
    vocab = Vocabulary(16, 2, ("fp",))
    with pytest.raises(MagvitError, match=r"task 'opd' has no prompt .* its tasks are: fp"):
        vocab.prompt_id("opd")
    with pytest.raises(MagvitError, match=r"class label 2 is outside \[0, 2\)"):
        vocab.class_id(2)
    with pytest.raises(MagvitError, match=r"labels \[5\] are outside \[0, 2\)"):
        build_sequence(vocab, torch.zeros(1, 4, dtype=torch.long), "fp", torch.tensor([5]))
    with pytest.raises(MagvitError, match="name the task"):
        build_sequence(vocab, torch.zeros(1, 4, dtype=torch.long), None, None)
    with pytest.raises(MagvitError, match=r"latent ids span \[0, 99\], outside the vocabulary \[0, 21\)"):
        build_sequence(vocab, torch.tensor([[0, 99]]), "fp", None)
    with pytest.raises(MagvitError, match=r"repeated: \['fp'\]"):
        Vocabulary(16, 0, ("fp", "fi", "fp"))
    with pytest.raises(MagvitError, match="codebook_size > 0"):
        Vocabulary(0, 0)


def test_round_trip_through_a_checkpoint_dict():
    vocab = Vocabulary(1024, 101, TASKS)
    data = vocab.to_dict()
    assert data == {"codebook_size": 1024, "num_classes": 101, "task_names": list(TASKS)}
    assert Vocabulary.from_dict(data) == vocab
    with pytest.raises(MagvitError, match=r"keys \['codebook_size'\], expected"):
        Vocabulary.from_dict({"codebook_size": 3})
