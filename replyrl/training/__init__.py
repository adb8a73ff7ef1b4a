"""Training stages: SFT (baseline and polychromic) and GRPO, their trainers, resumable runs, logging and reports."""
