"""Metrics of generated replies: Pass@k, diversity, overlap with references, and statistics. Pure functions, no I/O."""
