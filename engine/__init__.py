"""Latent Stage: a live generative art performance engine."""
