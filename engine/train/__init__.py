"""Offline training: data loading, one trainer per model family, sample metrics."""
