"""Stage 1: video tokenizers (3D-VQ and the per-frame 2D-VQ baseline) and their discriminator."""
