"""The model_dir contract: what a run writes there and reads back (TF-free)."""
