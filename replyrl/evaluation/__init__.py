"""The `generate` and `evaluate` stages' logic: sampling replies, scoring them, the report, the LLM judge."""
