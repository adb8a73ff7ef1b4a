"""Input data: the data contract, the built-in sample, validation of raw rows, grouping and the split."""
