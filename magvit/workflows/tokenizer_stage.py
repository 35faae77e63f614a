"""One stage-1 training step: the generator (VQ autoencoder) then, with a GAN, the discriminator.

Generator loss = l2·MSE (pixels in [-1, 1]) + quantizer losses (+ perceptual + gan·non-saturating, when on);
discriminator loss = non-saturating + R1 (+ lecam·LeCam). Adam with the experiment's betas
(paper: (0, 0.99)), warm-up + cosine lr, generator EMA (the EMA weights are the tokenizer).
Losses run in fp32 under bf16 autocast. Under DDP the generator is wrapped in
DistributedDataParallel; the discriminator's gradients are averaged by hand, because R1 needs a
double backward that DDP's hooks do not support.
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.distributed as dist

from magvit.core.losses.gan import discriminator_loss, generator_loss
from magvit.core.losses.lecam import LeCam
from magvit.core.losses.r1 import r1_penalty
from magvit.core.metrics import psnr
from magvit.core.montage import reconstruction_grid
from magvit.core.tokenizer.discriminator import Discriminator
from magvit.core.tokenizer.quantizer import perplexity
from magvit.core.training import (
    EMA,
    BatchStream,
    DistContext,
    all_reduce_mean,
    autocast,
    grad_norm_of,
    load_schedule_state,
    make_lr_scheduler,
    sync_gradients,
    unwrap,
    wrap_ddp,
)
from magvit.core.training.condition_clips import condition_clips
from magvit.core.training.misplaced_tokens import kept_pixels, misplace_tokens
from magvit.errors import MagvitError
from magvit.workflows.condition_agreement import (
    agreement_metrics,
    condition_agreement,
    condition_tasks,
)
from magvit.workflows.tokenizer_losses import TokenizerLosses


class TokenizerStage:
    def __init__(self, model, data, losses: TokenizerLosses, train, *, ctx: DistContext,
                 seed: int, precision: str = "fp32", eval_data=None, keep_media: bool = False):
        self.ctx, self.losses, self.train, self.seed = ctx, losses, train, seed
        self.keep_media = keep_media  # keep the last batch for `media` (run.media_every > 0)
        self.precision, self.data, self.eval_data = precision, data, eval_data
        self.model = model.to(ctx.device)
        self.ddp = wrap_ddp(self.model, ctx)
        # Frozen parts (`codes_from`: the encoder and quantizer) get no optimiser state.
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(trainable, lr=train.lr, betas=train.betas)
        self.sched = self._schedule(self.opt)
        self.ema = EMA(self.model, train.ema_decay) if train.ema_decay else None
        self.disc = None
        if losses.gan:
            video = data[0]["video"]
            arch = self.model.arch
            self.disc = Discriminator(arch.disc_channels, arch.disc_multipliers,
                                      video.shape[1], video.shape[2]).to(ctx.device)
            self.disc_opt = torch.optim.Adam(
                self.disc.parameters(), lr=losses.disc_lr or train.lr, betas=train.betas)
            self.disc_sched = self._schedule(self.disc_opt)
            self.lecam = LeCam(losses.lecam_decay).to(ctx.device)
        self.perceptual = None
        if losses.perceptual and losses.perceptual_model is not None:
            self.perceptual = losses.perceptual_model.build().to(ctx.device)
        self.batches = None
        self.dead = 0
        if losses.misplaced_tokens:
            _check_misplacing(self.model, ctx)
        # `condition_clips`: the conditional tasks whose padded videos replace some clips
        self.padding_tasks = list(condition_tasks().values()) if losses.condition_clips else []

    def _schedule(self, opt):
        return make_lr_scheduler(opt, warmup_steps=self.train.warmup_steps,
                                 total_steps=self.train.steps, min_ratio=self.train.min_lr_ratio)

    def begin(self, start_step: int) -> None:
        self.batches = iter(BatchStream(  # one step's batch: all its accumulated micro-batches
            self.data, self.train.batch_size * self.train.accumulate, seed=self.seed, start_step=start_step,
            rank=self.ctx.rank, world_size=self.ctx.world_size, num_workers=self.train.num_workers,
        ))

    # -- one step -----------------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        videos = next(self.batches)["video"].to(self.ctx.device).chunk(self.train.accumulate)
        if self.padding_tasks:  # the targets too: each replaced clip is reconstructed as padded
            videos = tuple(self._condition_clips(video, (step, i)) for i, video in enumerate(videos))
        gan_on = self.disc is not None and step >= self.losses.gan_start_step
        self.opt.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        recons, auxes = [], []
        for i, video in enumerate(videos):  # each micro-batch adds (its mean loss) / parts
            with sync_gradients(self.ddp, i == len(videos) - 1):
                loss, recon, aux, metrics = self._generator_loss(video, gan_on, (step, i))
                (loss / len(videos)).backward()
            recons.append(recon.detach())
            auxes.append(aux)
            _add(sums, metrics, len(videos))
        sums["grad_norm"] = grad_norm_of(self.model.parameters(), self.train.grad_clip)
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update(self.model)
        if gan_on:
            _add(sums, self._discriminator_step(videos, recons), 1)
        codes = torch.cat([aux["codes"].flatten() for aux in auxes])
        sums.update(self._codebook_usage(step, codes, torch.cat([a["latent"] for a in auxes])))
        sums["psnr"] = torch.cat([psnr(r, v) for r, v in zip(recons, videos)]).mean().item()
        if self.keep_media:  # for `media`
            self._last = (videos[0][:4].clone(), recons[0][:4].clone())
        sums["lr"] = self.sched.get_last_lr()[0]
        clips = sum(len(v) for v in videos) * self.ctx.world_size
        sums["batch_clips"], sums["batch_tokens"] = clips, clips * auxes[0]["codes"][0].numel()
        return sums

    def _generator_loss(self, video, gan_on: bool, where: tuple[int, int]):
        if self.losses.misplaced_tokens:
            recon, aux, weight = self._misplaced_forward(video, where)
        else:
            with autocast(self.ctx.device, self.precision):
                recon, aux = self.ddp(video)
            weight = None
        recon = recon.float()
        err = (2 * (recon - video)).pow(2)  # in [-1, 1] pixel units, as the model sees them
        l2 = err.mean() if weight is None else (err * weight).sum() / (weight.sum() * err.shape[1])
        loss = self.losses.l2 * l2 + aux["quantizer_loss"]
        metrics = {"l2": l2.item(), "quantizer": aux["quantizer_loss"].item()}
        if self.perceptual is not None:
            perceptual = self.perceptual(recon, video)
            loss = loss + self.losses.perceptual * perceptual
            metrics["perceptual"] = perceptual.item()
        if gan_on:
            self.disc.requires_grad_(False)
            with autocast(self.ctx.device, self.precision):
                fake_logits = self.disc(recon)
            g_loss = generator_loss(fake_logits)
            loss = loss + self.losses.gan * g_loss
            metrics["g_gan"] = g_loss.item()
        return loss, recon, aux, metrics

    def _condition_clips(self, video, where: tuple[int, int]):
        """`video` with `condition_clips` of its clips replaced by a task's padded video of them.
        Seeded by the step, micro-batch and rank, so a resumed run draws the same clips."""
        seed = ((self.seed * 1_000_003 + where[0]) * 997 + where[1]) * 131 + self.ctx.rank + 7
        padded, _ = condition_clips(video, self.losses.condition_clips, self.padding_tasks,
                                    torch.Generator().manual_seed(seed))
        return padded

    def _misplaced_forward(self, video, where: tuple[int, int]):
        """The forward pass with a box of tokens misplaced in some clips (`misplaced_tokens`), and
        the pixel weights (B, 1, T, H, W) that leave their pixels out of the loss. Seeded by the
        step and micro-batch, so a resumed run draws the same boxes."""
        model = self.model
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + where[0] * 997 + where[1])
        with autocast(self.ctx.device, self.precision):
            z = model.encode_latent(video)
            quantized, aux = model.quantizer(z)
            aux["latent"] = z
            moved, kept = misplace_tokens(quantized, self.losses.misplaced_tokens, generator)
            recon = model.decode_latent(moved)
        return recon, aux, kept_pixels(kept, *video.shape[2:])

    def _discriminator_step(self, reals, fakes) -> dict[str, float]:
        self.disc.requires_grad_(True)
        self.disc_opt.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for real, fake in zip(reals, fakes):
            with autocast(self.ctx.device, self.precision):
                if self.losses.r1_cost:
                    r1, real_logits = r1_penalty(self.disc, real, self.losses.r1_cost)
                else:
                    r1, real_logits = torch.zeros((), device=real.device), self.disc(real)
                fake_logits = self.disc(fake)
            loss = discriminator_loss(real_logits, fake_logits) + r1
            metrics = {"d_loss": loss.item(), "r1": r1.item()}
            if self.losses.lecam:  # its EMAs of the logits advance once per micro-batch
                lecam = self.lecam(real_logits, fake_logits, lambda x: all_reduce_mean(x, self.ctx))
                loss = loss + self.losses.lecam * lecam
                metrics["lecam"] = lecam.item()
            (loss / len(reals)).backward()
            _add(sums, metrics, len(reals))
        params = [p for p in self.disc.parameters() if p.grad is not None]
        if self.ctx.distributed:  # by hand: R1's double backward does not go through DDP
            for p in params:
                dist.all_reduce(p.grad)
                p.grad /= self.ctx.world_size
        grad_norm_of(params, self.train.grad_clip)
        self.disc_opt.step()
        self.disc_sched.step()
        return sums

    @torch.no_grad()
    def _codebook_usage(self, step: int, codes: torch.Tensor, latent: torch.Tensor) -> dict[str, float]:
        quantizer = self.model.quantizer
        quantizer.record_usage(codes)
        used = int((quantizer.hits > 0).sum())
        if (step + 1) % self.losses.usage_window == 0:
            self.dead = len(quantizer.dead_codes())
            frozen = any(not p.requires_grad for p in quantizer.parameters())  # codes_from
            if self.losses.restart_dead_codes and not frozen:
                restarted = quantizer.restart_dead_codes(latent)
                if self.ema is not None and len(restarted):  # the EMA codebook jumps with the restarted codes
                    self.ema.shadow["quantizer.codebook"][restarted] = quantizer.codebook[restarted].float()
            else:
                quantizer.hits.zero_()
        return {"perplexity": perplexity(codes, quantizer.codebook_size).item(), "codes_used": used,
                "dead_codes": self.dead}

    @torch.no_grad()
    def media(self, step: int) -> dict[str, torch.Tensor]:
        """A reconstruction grid of the last batch: rows of clips, original above reconstruction."""
        video, recon = self._last
        return {"reconstruction": reconstruction_grid(video, recon.clamp(0, 1))}

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        """PSNR and codebook use of the EMA tokenizer on the first eval batches, and how much of
        each task's condition its tokens keep (`agree_<task>`, `cond_psnr_<task>`)."""
        model = self.tokenizer().eval()
        scores, codes, agreement = [], [], []
        n = self.train.eval_batches * self.train.batch_size
        items = (self.eval_data[i]["video"] for i in range(min(n, len(self.eval_data))))
        tasks = condition_tasks()
        while batch := list(itertools.islice(items, self.train.batch_size)):
            video = torch.stack(batch).to(self.ctx.device)
            recon, aux = model(video)
            scores.append(psnr(recon, video))
            codes.append(aux["codes"].flatten())
            agreement.append((len(video), condition_agreement(model, video, tasks)))
        codes = torch.cat(codes)
        return {"psnr": torch.cat(scores).mean().item(),
                "codes_used": int(codes.unique().numel()),
                "perplexity": perplexity(codes, self.model.codebook_size).item(),
                **_weighted_mean(agreement)}

    def tokenizer(self):
        """A copy of the tokenizer with the EMA weights (the trained model as it ships)."""
        model = copy.deepcopy(self.model)
        if self.ema is not None:
            self.ema.copy_to(model)
        return model

    # -- checkpoints ---------------------------------------------------------------------------
    def checkpoint_payload(self):
        weights = {"model": unwrap(self.model).state_dict()}
        state = {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "dead": self.dead}
        if self.ema is not None:
            weights["ema"] = self.ema.state_dict()
        if self.disc is not None:
            weights["disc"] = {**self.disc.state_dict(), **{f"lecam.{k}": v for k, v in self.lecam.state_dict().items()}}
            state.update(disc_optimizer=self.disc_opt.state_dict(), disc_scheduler=self.disc_sched.state_dict())
        return weights, state

    def load_payload(self, weights, state) -> None:
        self.model.load_state_dict(weights["model"])
        self.opt.load_state_dict(state["optimizer"])
        load_schedule_state(self.sched, state["scheduler"])
        self.dead = state["dead"]
        if self.ema is not None:
            self.ema.load_state_dict(weights["ema"])
        if self.disc is not None:
            disc = {k: v for k, v in weights["disc"].items() if not k.startswith("lecam.")}
            self.disc.load_state_dict(disc)
            self.lecam.load_state_dict({k[6:]: v for k, v in weights["disc"].items() if k.startswith("lecam.")})
            self.disc_opt.load_state_dict(state["disc_optimizer"])
            load_schedule_state(self.disc_sched, state["disc_scheduler"])


def _check_misplacing(model, ctx: DistContext) -> None:
    missing = [name for name in ("encode_latent", "quantizer", "decode_latent") if not hasattr(model, name)]
    if missing:
        raise MagvitError(f"losses.misplaced_tokens: needs a tokenizer with encode_latent, quantizer and "
                          f"decode_latent (vq3d); {type(model).__name__} lacks {', '.join(missing)}; "
                          "set misplaced_tokens = 0")
    if getattr(model, "causal", False):
        raise MagvitError("losses.misplaced_tokens: a causal tokenizer's first latent frame covers one "
                          "frame, not a whole patch; set misplaced_tokens = 0")
    if ctx.world_size > 1:
        raise MagvitError("losses.misplaced_tokens: runs on one process (its forward pass bypasses "
                          "DistributedDataParallel); train without torchrun, or set misplaced_tokens = 0")


def _add(sums: dict[str, float], metrics: dict[str, float], parts: int) -> None:
    """Accumulate each metric's mean over the micro-batches of a step."""
    for name, value in metrics.items():
        sums[name] = sums.get(name, 0.0) + value / parts


def _weighted_mean(parts: list[tuple[int, dict]]) -> dict[str, float]:
    """The clip-weighted mean of per-batch agreement reports, as flat metrics."""
    total = sum(n for n, _ in parts)
    flat: dict[str, float] = {}
    for n, report in parts:
        for key, value in agreement_metrics(report).items():
            flat[key] = flat.get(key, 0.0) + value * n / total
    return flat
