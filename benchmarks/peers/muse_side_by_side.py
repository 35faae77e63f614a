"""magvit against muse-maskgit-pytorch (the peer) at equal transformer config, in one process.

Run from the venv that `benchmarks/peers/make_muse_venv.sh` makes (the peer is not a magvit
dependency):

    /tmp/magvit-peer-muse/bin/python benchmarks/peers/muse_side_by_side.py \
        [--experiment ucf101-cg] [--rounds 3] [--precision fp32] [--json PATH]

Both transformers get the experiment's layers, hidden size, heads, MLP FLOPs (the peer's GEGLU
MLP with `ff_mult = mlp / hidden` does the same matmul FLOPs as a plain `mlp`-wide one) and
codebook, and random weights (speed does not depend on them). Timed, alternating ours and the
peer's in every round so that both see the same machine load:

- one forward of the whole sequence at batch 1 (ours: prefix + latent tokens; the peer: the
  latent tokens, with one conditioning token for its cross-attention, as a class would be);
- the same forward of the peer with its cross-attention removed (what is left is our block);
- class-conditional generation of one clip's tokens in the experiment's decode steps (12): our
  pipeline's CG transformer time (MaskGIT decode, without the tokenizer), the peer's
  `MaskGit.generate` without guidance (`cond_scale = 1`: one forward a step, as ours), its
  default top-k filter kept.

The peer's constructor reads a T5 config to size its text projection; a local config of the
right width stands in for the hub's (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # the peer's decode loop draws a bar
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the magvit command sets it, for both sides

import torch  # noqa: E402
from torch import nn  # noqa: E402

from magvit.core.training.precision import inference_autocast  # noqa: E402
from magvit.workflows.bench import experiment_pipeline, transformer_flops  # noqa: E402


class _NoCrossAttention(nn.Module):
    def forward(self, x, context=None, context_mask=None):
        return 0


def local_t5_config(width: int) -> str:
    folder = Path(tempfile.mkdtemp(prefix="t5-config-"))
    (folder / "config.json").write_text(json.dumps({"model_type": "t5", "d_model": width}))
    return str(folder)


def peer_model(config, latent_tokens: int, fmap: int):
    from muse_maskgit_pytorch import MaskGit, MaskGitTransformer, VQGanVAE

    class StandInVAE(VQGanVAE):  # sizes only: generate() then returns the token ids
        def __init__(self, codebook_size):
            nn.Module.__init__(self)
            self.codebook_size = codebook_size

        def copy_for_eval(self):
            return self

        def get_encoded_fmap_size(self, image_size):
            return fmap

        def decode_from_ids(self, ids):
            return ids

    context_width = config.hidden
    transformer = MaskGitTransformer(
        num_tokens=config.codebook_size, seq_len=latent_tokens, dim=config.hidden,
        depth=config.num_layers, heads=config.heads, dim_head=config.hidden // config.heads,
        ff_mult=config.mlp / config.hidden, t5_name=local_t5_config(context_width),
    )
    context = torch.randn(1, 1, context_width)  # one conditioning token, as a class label
    transformer.encode_text = lambda texts: context.expand(len(texts), -1, -1)
    maskgit = MaskGit(image_size=fmap, transformer=transformer, vae=StandInVAE(config.codebook_size))
    return maskgit.eval(), context


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiment", default="ucf101-cg")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    torch.manual_seed(0)
    ours = experiment_pipeline(args.experiment, torch.device("cpu"), args.precision)
    config = ours.bundle.transformer.config
    latent = ours.bundle.transformer.config.num_positions - ours.vocab.prefix_length
    fmap = int(round(latent ** 0.5))
    if fmap * fmap != latent:
        print(f"the peer decodes square token maps; {args.experiment} has {latent} latent tokens")
        return 2
    peer, context = peer_model(config, fmap * fmap, fmap)
    peer_plain, _ = peer_model(config, fmap * fmap, fmap)
    for blocks in peer_plain.transformer.transformer_blocks.layers:
        blocks[1] = _NoCrossAttention()
    steps = int(getattr(ours.decoder, "steps", 12))
    cg = "cg" if "cg" in ours.task_names else ours.task_names[0]

    ids = torch.randint(0, config.codebook_size, (1, config.num_positions))
    peer_ids = ids[:, -latent:]

    def our_forward():
        ours.transformer(ids)

    def peer_forward(model=peer):
        model.transformer(peer_ids, text_embeds=context)

    def our_generate(seconds):
        seconds.append(ours.generate(cg, label=0, seed=0).seconds["transformer"])

    def peer_generate():
        peer.generate(texts=["class 0"], fmap_size=fmap, timesteps=steps, cond_scale=1)

    rows = {"our forward": [], "peer forward": [], "peer forward, no cross-attention": [],
            "our generate": [], "peer generate": []}
    with torch.inference_mode(), inference_autocast(torch.device("cpu"), args.precision):
        for fn in (our_forward, peer_forward, lambda: peer_forward(peer_plain), peer_generate):
            fn()  # warm-up
        our_generate([])
        for r in range(args.rounds):
            rows["our forward"].append(timed(our_forward))
            rows["peer forward"].append(timed(peer_forward))
            rows["peer forward, no cross-attention"].append(timed(lambda: peer_forward(peer_plain)))
            our_generate(rows["our generate"])
            rows["peer generate"].append(timed(peer_generate))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in rows.items()),
                  flush=True)

    median = {k: statistics.median(v) for k, v in rows.items()}
    result = {
        "experiment": args.experiment, "precision": args.precision, "rounds": args.rounds,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "steps": steps,
        "tokens": {"ours": config.num_positions, "peer": latent},
        "gflop_per_forward": transformer_flops(config, config.num_positions) / 1e9,
        "median_s": median,
        "speedup": {
            "forward": median["peer forward"] / median["our forward"],
            "forward_vs_peer_without_cross_attention":
                median["peer forward, no cross-attention"] / median["our forward"],
            "generate": median["peer generate"] / median["our generate"],
        },
    }
    print(f"\n{args.experiment}, {args.precision}, {result['threads']} threads, torch {torch.__version__}, "
          f"median of {args.rounds} interleaved rounds")
    for name, seconds in median.items():
        print(f"  {name:34s} {seconds:8.3f} s")
    for name, ratio in result["speedup"].items():
        print(f"  ours faster, {name:30s} {ratio:6.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
