"""Models: the base policy, trained policies (adapters and their lineage), the sentence encoder, precision."""
