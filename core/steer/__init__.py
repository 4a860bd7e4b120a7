"""Steering: push entities along a probe direction and read the model's answers."""
