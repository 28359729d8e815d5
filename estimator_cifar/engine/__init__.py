"""Estimator plumbing: RunConfig and the Estimator, the modes, hooks, distribution, preemption, warm start, continuous eval, export and predict."""
