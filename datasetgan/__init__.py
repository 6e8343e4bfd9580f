"""StyleGAN backbones, feature extraction, the Style Interpreter and the label factory."""
