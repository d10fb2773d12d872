"""Generator families (one file each) and the model file format (checkpoint.py)."""
