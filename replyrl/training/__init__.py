"""Training stages' shared pieces (checkpoint resume, dvclive logging, precision) and the SFT trainers."""
