"""Sequence generators stepped live by the show: streaming samplers over the RNN note and text models."""
