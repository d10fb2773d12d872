"""Sound synthesis and analysis, pure numpy: the synth, its filter, the block ring,
audio features."""
