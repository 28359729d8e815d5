"""The model: networks, the model_fn (losses, train_op, EMA, metrics), optimizers and summaries."""
