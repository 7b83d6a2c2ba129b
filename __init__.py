"""modeldeck: run machine-learning model deployments from the terminal."""

__version__ = "0.1.0"
