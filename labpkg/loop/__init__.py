"""The training loop and its state: Trainer, evaluation, updates, checkpoints, resume."""
