"""Training stages' shared pieces (checkpoint resume, dvclive logging, precision), the SFT trainers and GRPO."""
