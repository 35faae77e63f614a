"""COMMIT inputs for one task: condition tokens, [MASK], the prefix, class dropout, the memo."""

import pytest
import torch
import torch.nn.functional as F

import magvit
from magvit.core.tokens import Vocabulary
from magvit.errors import MagvitError
from magvit.workflows.commit_inputs import CommitDraws, CommitInputs
from magvit.workflows.token_memo import TokenMemo

LATENT = (2, 4, 4)  # 4x16x16 clips, factors (2, 4, 4)
N = 32
SCHEDULE = {"ratio": 1.0}


def schedule(r):
    return torch.full_like(r, SCHEDULE["ratio"])


@pytest.fixture(autouse=True)
def reset_ratio():
    SCHEDULE["ratio"] = 1.0


class StubTokenizer:
    """Code = the supervoxel's mean brightness in 16 levels; counts the clips it encodes."""

    factors = (2, 4, 4)
    codebook_size = 16

    def __init__(self):
        self.clips_encoded = 0

    def encode(self, video):
        self.clips_encoded += video.shape[0]
        pooled = F.avg_pool3d(video.mean(1, keepdim=True), self.factors)[:, 0]
        return (pooled * 15).round().long()


def make_inputs(ratio=1.0, class_dropout=0.0, memo=None, tasks=("fp", "cg", "opc")):
    regs = magvit.registries()
    built = {name: regs.tasks.create(name) for name in tasks}
    SCHEDULE["ratio"] = ratio
    return CommitInputs(
        tokenizer=StubTokenizer(), tasks=built, vocab=Vocabulary(16, 4, tasks),
        latent_shape=LATENT, schedule=schedule,
        class_dropout=class_dropout, memo=memo,
    )


def clips(batch=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, 4, 16, 16, generator=g), torch.tensor([0, 1, 2, 3][:batch])


def gen(seed=0, batch=4):
    """The draws of one batch (mask ratio from the stub schedule, scores, class dropout)."""
    return CommitDraws.sample(batch, N, schedule, torch.Generator().manual_seed(seed))


def test_fully_masked_fp_gives_condition_tokens_in_the_first_latent_frame_and_mask_elsewhere():
    inputs = make_inputs(ratio=1.0)
    video, labels = clips()
    ex = inputs("fp", video, labels, gen())
    padded, _ = inputs.tasks["fp"].condition(video)
    cond = inputs.tokenize(padded)
    vocab = inputs.vocab
    assert torch.equal(ex.sequence[:, 0], torch.full((4,), vocab.prompt_id("fp")))
    assert torch.equal(ex.sequence[:, 1], torch.full((4,), vocab.uncond_id))  # fp takes no class
    latent = ex.sequence[:, 2:]
    assert torch.equal(latent[:, :16], cond[:, :16])  # latent frame 0 holds the given frame
    assert torch.all(latent[:, 16:] == vocab.mask_id)
    assert torch.equal(ex.batch.targets, inputs.tokenize(video))
    assert torch.all(ex.batch.weights == 1.0) and bool(ex.batch.should_mask.all())


def test_cg_gets_the_class_and_only_mask_tokens_and_dropout_makes_it_unconditional():
    video, labels = clips()
    ex = make_inputs(ratio=1.0)("cg", video, labels, gen())
    assert ex.sequence[:, 1].tolist() == [16 + label for label in labels.tolist()]
    assert torch.all(ex.sequence[:, 2:] == Vocabulary(16, 4, ("fp", "cg", "opc")).mask_id)
    dropped = make_inputs(ratio=1.0, class_dropout=1.0)("cg", video, labels, gen())
    assert torch.all(dropped.sequence[:, 1] == 16 + 4)
    with pytest.raises(MagvitError, match="task 'cg' needs class labels.*label -1"):
        make_inputs()("cg", video, torch.tensor([0, -1, 1, 2]), gen())


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.8])
def test_mask_ratio_masks_exactly_floor_n_ratio_tokens_and_keeps_the_rest(ratio):
    ex = make_inputs(ratio=ratio)("opc", *clips(), gen(1))
    masked = ex.batch.should_mask
    assert masked.sum(1).tolist() == [int(N * ratio)] * 4
    latent = ex.sequence[:, 2:]
    assert torch.equal(latent[~masked], ex.batch.targets[~masked])


def test_same_generator_same_example_other_generator_other_mask():
    inputs = make_inputs(ratio=0.5)
    video, labels = clips()
    a, b = inputs("fp", video, labels, gen(5)), inputs("fp", video, labels, gen(5))
    c = inputs("fp", video, labels, gen(6))
    assert torch.equal(a.sequence, b.sequence)
    assert not torch.equal(a.batch.should_mask, c.batch.should_mask)


def test_memo_encodes_each_clip_once_per_task_and_gives_the_same_tokens():
    memo = TokenMemo(codebook_size=16)
    inputs = make_inputs(ratio=0.5, memo=memo)
    video, labels = clips()
    first = inputs("fp", video, labels, gen(), indices=torch.arange(4))
    assert inputs.tokenizer.clips_encoded == 8  # targets + fp conditions
    again = inputs("fp", video, labels, gen(), indices=torch.arange(4))
    assert inputs.tokenizer.clips_encoded == 8 and torch.equal(first.sequence, again.sequence)
    inputs("cg", video, labels, gen(), indices=torch.arange(4))
    assert inputs.tokenizer.clips_encoded == 8  # cg has no condition video
    inputs("opc", video[:2], labels[:2], gen(batch=2), indices=torch.tensor([1, 9]))
    assert inputs.tokenizer.clips_encoded == 8 + 1 + 2  # clip 9's target, both opc conditions
    assert len(memo) == 4 + 4 + 1 + 2
    plain = make_inputs(ratio=0.5)("fp", video, labels, gen())
    assert torch.equal(plain.sequence, first.sequence)


def test_draws_for_the_global_batch_slice_into_the_ranks_rows():
    whole = gen(3, batch=4)
    halves = [whole.rows(0, 2), whole.rows(2, 4)]
    inputs = make_inputs(ratio=0.5)
    video, labels = clips()
    full = inputs("opc", video, labels, whole)
    parts = [inputs("opc", video[a:b], labels[a:b], d) for (a, b), d in zip([(0, 2), (2, 4)], halves)]
    assert torch.equal(torch.cat([p.sequence for p in parts]), full.sequence)
    with pytest.raises(ValueError, match="draws for"):
        inputs("opc", video, labels, halves[0])


def test_class_dropout_outside_unit_interval_is_refused():
    with pytest.raises(MagvitError, match=r"commit.class_dropout must be in \[0, 1\], got 1.5"):
        make_inputs(class_dropout=1.5)
