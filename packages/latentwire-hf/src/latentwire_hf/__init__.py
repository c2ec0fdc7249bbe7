"""Hugging Face backends for LatentWire: frozen causal LMs, frozen feature sources, datasets, training."""
