"""Model parts: the U-Net and its anatomy, losses, metrics and optimizers."""
