"""One stage-2 training run as a `TrainLoop` stage: a COMMIT step per call, checkpoints as bundles.

Each step draws its task from the weighted cycle, builds the COMMIT input for the batch with the
frozen tokenizer, and takes one AdamW step on the loss of Eq. 3/4. Everything random in a step
(mask ratio, scores, class dropout) is drawn for the global batch from a generator seeded by
(seed, step) and sliced per rank, the data comes by (seed, step), and dropout from the RNG the
loop saves: `--resume` continues exactly, and N ranks see what one process would.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from magvit.core.commit_loss import commit_loss
from magvit.core.data.token_cache import tokenizer_fingerprint
from magvit.core.montage import reconstruction_grid
from magvit.core.task_mix import TaskCycle
from magvit.core.training import (
    BatchStream,
    DistContext,
    autocast,
    check_finite,
    grad_norm_of,
    load_schedule_state,
    make_lr_scheduler,
    sync_gradients,
    unwrap,
    wrap_ddp,
)
from magvit.core.training.rng import mix_seed
from magvit.errors import MagvitError
from magvit.registry.experiment import Experiment
from magvit.workflows.bundle import bundle_record
from magvit.workflows.commit_eval import HeldOutEval, mask_schedule_of
from magvit.workflows.commit_inputs import CommitInputs
from magvit.workflows.init_from import init_transformer
from magvit.workflows.stage2_data import training_clips
from magvit.workflows.stage2_layout import require_sections, stage2_layout
from magvit.workflows.token_memo import TokenMemo
from magvit.workflows.tokenizer_data import data_warning

EVAL_FILE = "eval.json"
TASK_LOSS_SMOOTHING = 0.8  # the per-task loss shown in the progress bar is an EMA over its steps


def frozen_tokenizer(exp: Experiment, device: torch.device):
    config = exp.tokenizer.config
    if getattr(config, "checkpoint", None) == "":
        raise MagvitError(
            "tokenizer.checkpoint is empty: stage 2 needs a trained tokenizer. Train one with "
            "`magvit train tokenizer ...` and set tokenizer.checkpoint to its run directory"
        )
    return exp.tokenizer.build().to(device).eval().requires_grad_(False)


def adamw(model: torch.nn.Module, exp: Experiment) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices and embeddings only (not biases, not norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": exp.train.weight_decay},
              {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=exp.train.lr, betas=tuple(exp.train.betas))


class TransformerStage:
    def __init__(self, exp: Experiment, run_dir: Path, ctx: DistContext, load_init_from: bool = True):
        """`load_init_from=False` skips train.init_from: a resume's checkpoint brings the weights."""
        require_sections(exp, "data", "tokenizer", "transformer", "tasks")
        self.exp, self.run_dir, self.ctx, self.device = exp, Path(run_dir), ctx, ctx.device
        self.data = exp.data.build()
        self.tokenizer = frozen_tokenizer(exp, self.device)
        warning = data_warning(exp)
        if warning and ctx.is_main:
            print(warning, file=sys.stderr)
        self.tasks = {name: entry.task.build() for name, entry in exp.tasks.items()}
        self.layout = stage2_layout(exp, self.tokenizer, self.data, self.tasks)
        self.vocab = self.layout.vocab
        model = self.layout.transformer.build().to(self.device)
        self.model = wrap_ddp(model, ctx)
        self.factored = bool(getattr(model, "codebook_factors", ()))
        self.optimizer = adamw(model, exp)
        self.scheduler = make_lr_scheduler(
            self.optimizer, warmup_steps=exp.train.warmup_steps, total_steps=exp.train.steps,
            min_ratio=exp.train.min_lr_ratio,
        )
        schedule = mask_schedule_of(exp)
        self.inputs = CommitInputs(
            tokenizer=self.tokenizer, tasks=self.tasks, vocab=self.vocab,
            latent_shape=self.layout.latent_shape, schedule=schedule,
            weight_mode=exp.commit.weight_mode, class_dropout=exp.commit.class_dropout,
            memo=TokenMemo(self.vocab.codebook_size) if exp.commit.memoize_tokens else None,
        )
        self.eval_inputs = CommitInputs(
            tokenizer=self.tokenizer, tasks=self.tasks, vocab=self.vocab,
            latent_shape=self.layout.latent_shape, schedule=schedule, weight_mode=exp.commit.weight_mode,
            memo=TokenMemo(self.vocab.codebook_size),  # eval clips are fixed: encode each once
        )
        self.cycle = TaskCycle({n: e.weight for n, e in exp.tasks.items()}, exp.run.seed)
        self.task_loss: dict[str, float] = {}
        self.record = bundle_record(
            experiment=exp, transformer=self.layout.transformer, tokenizer=exp.tokenizer,
            vocab=self.vocab, task_names=self.layout.task_names,
            latent_shape=self.layout.latent_shape, clip_shape=self.layout.clip_shape,
            tokenizer_source=getattr(exp.tokenizer.config, "checkpoint", ""),
        )
        self.record["tokenizer_fingerprint"] = tokenizer_fingerprint(self.tokenizer)
        if exp.train.init_from and load_init_from:  # every rank loads the same weights, so DDP replicas agree
            self.record["init_from"] = init_transformer(
                model, self.tokenizer, exp.train.init_from, self.record)

    # -- data -------------------------------------------------------------------------------------
    @property
    def local_batch(self) -> int:
        return max(1, self.exp.train.batch_size // self.ctx.world_size)

    def _eval_clips(self):
        dataset = self.data.make("eval", self.exp.run.seed)
        count = min(len(dataset), self.exp.train.eval_batches * self.local_batch)
        for start in range(0, count, self.local_batch):
            items = [dataset[i] for i in range(start, min(count, start + self.local_batch))]
            video = torch.stack([item["video"] for item in items]).to(self.device)
            yield video, torch.tensor([int(item["label"]) for item in items])

    def begin(self, start_step: int) -> None:
        clips = training_clips(
            self.data.make("train", self.exp.run.seed), memoize=self.exp.commit.memoize_tokens,
            token_cache=self.exp.commit.token_cache, tokenizer=self.tokenizer,
            fingerprint=self.record["tokenizer_fingerprint"], ctx=self.ctx, batch_size=self.local_batch,
        )
        if self.exp.commit.warm_tokens:  # every (kind, clip) now, not the first time a step needs it
            self.inputs.warm(clips, 4 * self.local_batch, self.device, progress=self.ctx.is_main)
        stream = BatchStream(  # one step's batch: all its accumulated micro-batches
            clips, self.exp.train.batch_size * self.exp.train.accumulate, seed=self.exp.run.seed,
            start_step=start_step, rank=self.ctx.rank, world_size=self.ctx.world_size,
            num_workers=self.exp.train.num_workers,
        )
        self.batches = iter(stream)
        self.held_out = None
        if self.exp.train.eval_every:
            self.held_out = HeldOutEval(
                self.eval_inputs, self._eval_clips(), self.layout.task_names,
                seed=self.exp.run.seed, autocast=lambda: autocast(self.device, self.exp.run.precision),
            )

    # -- the TrainLoop protocol -------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        batch = next(self.batches)  # this rank's share of batch_size x accumulate clips
        task = self.cycle.task_at(step)
        generator = torch.Generator().manual_seed(mix_seed(self.exp.run.seed, step))
        local = len(batch["label"])
        draws = self.inputs.draws(local * self.ctx.world_size, generator)
        draws = draws.rows(self.ctx.rank * local, (self.ctx.rank + 1) * local)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        micro, parts = local // self.exp.train.accumulate, self.exp.train.accumulate
        total = 0.0
        for i in range(parts):  # gradients of each micro-batch's mean loss / parts add up to the step's
            rows = slice(i * micro, (i + 1) * micro)
            targets = batch["tokens"][rows].flatten(1).to(self.device) if "tokens" in batch else None
            index = batch["index"][rows] if "index" in batch else None
            example = self.inputs(task, batch["video"][rows].to(self.device), batch["label"][rows],
                                  draws.rows(rows.start, rows.stop), targets=targets, indices=index)
            with sync_gradients(self.model, i == parts - 1):
                with autocast(self.device, self.exp.run.precision):
                    # a factorised head's digit logits: the full vocabulary is never built
                    logits = (self.model(example.sequence, factored=True) if self.factored
                              else (self.model(example.sequence),))
                loss = commit_loss(
                    tuple(part[:, self.vocab.prefix_length:] for part in logits), example.batch.targets,
                    example.batch.weights, label_smoothing=self.exp.commit.label_smoothing,
                )
                check_finite(loss, step=step, name=f"loss ({task})")
                (loss / parts).backward()
            total += loss.item() / parts
        if self.exp.run.media_every:  # for `media`: a copy, so the step's logits can be freed
            self._last = (example.batch, tuple(part.detach()[:4].clone() for part in logits))
        grad_norm = grad_norm_of(self.model.parameters(), self.exp.train.grad_clip)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        clips = local * self.ctx.world_size
        return {"loss": total, "lr": lr, "grad_norm": grad_norm, "batch_clips": clips,
                "batch_tokens": clips * self.layout.num_latent, **self._task_losses(task, total)}

    @torch.no_grad()
    def media(self, step: int) -> dict[str, torch.Tensor]:
        """The last batch's one-step prediction, decoded: per clip the true tokens' video above
        the video of the argmax prediction at every masked position (the rest given)."""
        batch, logits = self._last
        count = logits[0].shape[0]
        predicted = 0
        for part in logits:  # the argmax code is each digit's argmax (the logits are separable)
            predicted = predicted * part.shape[-1] + part[:, self.vocab.prefix_length:].float().argmax(-1)
        masked = batch.should_mask[:count]
        tokens = torch.where(masked, predicted, batch.targets[:count])
        grid = lambda t: t.reshape(count, *self.layout.latent_shape)  # noqa: E731
        truth = self.tokenizer.decode(grid(batch.targets[:count]))
        return {"prediction": reconstruction_grid(truth, self.tokenizer.decode(grid(tokens)))}

    def _task_losses(self, task: str, loss: float) -> dict[str, float]:
        if len(self.layout.task_names) == 1:
            return {}
        if not self.task_loss:  # before a task is seen its loss is that of the untrained model
            self.task_loss = {name: loss for name in self.layout.task_names}
        self.task_loss[task] = TASK_LOSS_SMOOTHING * self.task_loss[task] + (1 - TASK_LOSS_SMOOTHING) * loss
        return {f"loss_{name}": value for name, value in self.task_loss.items()}

    def checkpoint_payload(self):
        weights = {"model": unwrap(self.model).state_dict(), "tokenizer": self.tokenizer.state_dict()}
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "task_loss": dict(self.task_loss)}
        return weights, state

    def load_payload(self, weights, state) -> None:
        unwrap(self.model).load_state_dict(weights["model"])
        self.tokenizer.load_state_dict(weights["tokenizer"])  # the run keeps its own tokenizer
        self.optimizer.load_state_dict(state["optimizer"])
        load_schedule_state(self.scheduler, state["scheduler"])
        self.task_loss = dict(state["task_loss"])

    def evaluate(self, step: int) -> dict[str, float]:
        scores = self.held_out(unwrap(self.model))
        if self.ctx.is_main:
            report = {
                "step": step,
                "masked_token_ce": scores,
                "mean": sum(scores.values()) / len(scores),
                "uniform_ce": math.log(self.vocab.codebook_size),
                "frequency_ce": self.held_out.frequency_ce,
            }
            (self.run_dir / EVAL_FILE).write_text(json.dumps(report, indent=2) + "\n")
            tqdm.write(f"eval step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
        return {f"ce_{name}": value for name, value in scores.items()}
