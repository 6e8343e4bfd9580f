"""Consumers of generated datasets, such as the animatable car-asset export."""
