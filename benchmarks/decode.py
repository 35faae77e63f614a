"""Seconds per clip: COMMIT (12 steps) against autoregressive decoding, with and without a KV cache.

On one random-weight model per configuration (the decoders' cost does not depend on the
weights), for class-conditional generation of every latent token of one clip (batch 1):

- the tokenizer: encoding a condition clip plus decoding the generated tokens (paper Fig. 5
  splits a clip's time between tokenizer and transformer);
- COMMIT with 12 steps: 12 bidirectional forwards of the full sequence;
- autoregressive with the KV cache: one token appended per step, the whole clip run;
- autoregressive without the cache: one full causal forward per token. Every such step costs
  the same (one forward of the full sequence), so only the first `--ar-sample` steps are timed
  and the total is EXTRAPOLATED to all N tokens; the output says so.

Configurations: `tiny` (bert tiny, vq3d tiny, 8x32x32 clips, 256 tokens) and `B` (bert B: 12
layers, 768 hidden, 1026 positions; vq3d B, 16x128x128 clips, 1024 tokens).
Run: `python benchmarks/decode.py [--config tiny B] [--ar-sample 8] [--threads 1] [--json out.json]`.
On a busy shared CPU, small per-token ops wait on OpenMP workers: `--threads 1` measures the
decoders rather than the contention.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import torch

import magvit
from magvit.core.decoding import AutoregressiveSteps
from magvit.core.decoding.model_logits import PrefixedLogits
from magvit.core.tokens import Vocabulary, build_sequence

CONFIGS = {  # name -> (transformer preset, tokenizer preset, clip (T, H, W))
    "tiny": ("tiny", "tiny", (8, 32, 32)),
    "B": ("B", "B", (16, 128, 128)),
}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def build(name: str):
    transformer_preset, tokenizer_preset, clip = CONFIGS[name]
    regs = magvit.registries()
    torch.manual_seed(0)
    tokenizer = regs.tokenizers.create("vq3d", preset=tokenizer_preset).eval()
    latent = tuple(tokenizer.latent_shape(*clip))
    n = latent[0] * latent[1] * latent[2]
    vocab = Vocabulary(tokenizer.codebook_size, num_classes=1, task_names=("cg",))
    transformer = regs.transformers.create(
        "bert", preset=transformer_preset, vocab_size=vocab.size,
        num_positions=vocab.prefix_length + n, codebook_size=vocab.codebook_size,
        dropout=0.0, attention_dropout=0.0,
    ).eval()
    return tokenizer, transformer, vocab, clip, latent, n


@torch.inference_mode()
def measure(name: str, ar_sample: int) -> dict:
    tokenizer, transformer, vocab, clip, latent, n = build(name)
    prefix = build_sequence(vocab, torch.zeros(1, 0, dtype=torch.long), "cg", torch.tensor([0]))
    cond_tokens = torch.zeros(1, n, dtype=torch.long)
    cond_mask = torch.zeros(1, n, dtype=torch.bool)  # class-conditional: every token generated
    regs = magvit.registries()
    common = dict(codebook_size=vocab.codebook_size, mask_id=vocab.mask_id)

    video = torch.rand(1, 3, *clip, generator=torch.Generator().manual_seed(0))
    tokenizer.decode(tokenizer.encode(video[..., : clip[1] // 4, : clip[2] // 4]))  # warm-up
    encode_s, tokens = timed(lambda: tokenizer.encode(video))
    decode_s, _ = timed(lambda: tokenizer.decode(tokens))
    tokenizer_s = encode_s + decode_s

    bidirectional = PrefixedLogits(transformer, prefix, causal=False)
    bidirectional(cond_tokens)  # warm-up
    commit = regs.decoders.create("commit", steps=12, **common)
    commit_s, _ = timed(lambda: commit.decode(bidirectional, cond_tokens, cond_mask,
                                              generator=torch.Generator().manual_seed(0)))

    causal = PrefixedLogits(transformer, prefix, causal=True)
    cached = regs.decoders.create("autoregressive", kv_cache=True, **common)
    cached_s, _ = timed(lambda: cached.decode(causal, cond_tokens, cond_mask,
                                              generator=torch.Generator().manual_seed(0)))

    uncached = AutoregressiveSteps(causal, cond_tokens, cond_mask, kv_cache=False,
                                   generator=torch.Generator().manual_seed(0), **common)
    sample = min(ar_sample, n)
    sample_s, _ = timed(lambda: list(itertools.islice(uncached, sample)))
    uncached_s = sample_s / sample * n

    return {
        "config": name, "tokens": n, "clip": list(clip), "latent": list(latent),
        "transformer_parameters": sum(p.numel() for p in transformer.parameters()),
        "tokenizer_s": tokenizer_s, "tokenizer_encode_s": encode_s, "tokenizer_decode_s": decode_s,
        "commit12_s": commit_s, "ar_cached_s": cached_s,
        "ar_uncached_s": uncached_s, "ar_uncached_sampled_steps": sample,
        "ar_uncached_sample_s": sample_s,
    }


def report(r: dict) -> None:
    n, t = r["tokens"], r["tokenizer_s"]
    print(f"\n== {r['config']}: {n} tokens per clip ({'x'.join(map(str, r['clip']))} pixels), "
          f"transformer {r['transformer_parameters'] / 1e6:.1f}M parameters, batch 1")
    print(f"tokenizer  encode {r['tokenizer_encode_s']:.2f} s + decode {r['tokenizer_decode_s']:.2f} s")
    rows = [("COMMIT, 12 steps", r["commit12_s"]),
            ("autoregressive, KV cache", r["ar_cached_s"]),
            (f"autoregressive, no cache (EXTRAPOLATED from {r['ar_uncached_sampled_steps']} "
             f"of {n} steps)", r["ar_uncached_s"])]
    print(f"{'decoder':<58} {'transformer s':>13} {'clip s':>9} {'tokenizer share':>15}")
    for label, s in rows:
        print(f"{label:<58} {s:>13.2f} {s + t:>9.2f} {t / (s + t):>15.0%}")
    c = r["commit12_s"]
    print("speed-up of COMMIT-12 (transformer only / whole clip incl. tokenizer):")
    print(f"  vs autoregressive without cache: {r['ar_uncached_s'] / c:6.1f}x / "
          f"{(r['ar_uncached_s'] + t) / (c + t):6.1f}x")
    print(f"  vs autoregressive with cache:    {r['ar_cached_s'] / c:6.1f}x / "
          f"{(r['ar_cached_s'] + t) / (c + t):6.1f}x")
    print(f"  KV cache speed-up of autoregressive: {r['ar_uncached_s'] / r['ar_cached_s']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", choices=sorted(CONFIGS), default=["tiny", "B"])
    parser.add_argument("--ar-sample", type=int, default=8,
                        help="uncached autoregressive steps timed before extrapolating")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice); "
                        "on a shared machine 1 avoids idle-spinning OpenMP workers")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    results = []
    for name in args.config:
        results.append(measure(name, args.ar_sample))
        report(results[-1])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
