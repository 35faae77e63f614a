"""Stage 1 losses: entropy penalty, GAN, R1, LeCam and the perceptual-loss interface."""
