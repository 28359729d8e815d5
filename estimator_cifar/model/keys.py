"""Names the model shares with its callers: the features key, the EMA scope.

TF-free, so the input pipeline, export and warm start can use them without
importing the model_fn.
"""

# The features dict key of the images (float32 [N, S, S, 3]) model_fn reads.
IMAGES_KEY = "images"
# The scope of the weights' moving averages: `<variable>/<EMA_NAME>`.
EMA_NAME = "ExponentialMovingAverage"

# Eval metrics that readers without TensorFlow (the tools) look up in an
# eval result or a metrics.jsonl row (model/eval_metrics.py makes them).
CONFUSION_KEY = "confusion_matrix"
ECE_KEY = "ece"
NLL_KEY = "nll"
RELIABILITY_KEY = "reliability"
# Appended to the calibration metrics' keys for those of the raw logits.
UNCALIBRATED_SUFFIX = "_uncalibrated"
