"""BERT pretraining (masked language modelling + next sentence prediction) in NumPy alone."""

__version__ = "0.1.0"
