"""cotdistill: distil chain-of-thought reasoning from a teacher into small students."""

__version__ = "0.1.0"
