"""The label that marks a position as carrying no loss, shared by the model and the data."""

IGNORE_INDEX = -100  # as torch's cross-entropy ``ignore_index``: no loss, no gradient
