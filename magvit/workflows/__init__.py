"""Glue between experiments (TOML, registries) and the pure-torch core: training, generation."""
