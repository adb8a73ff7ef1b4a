"""One config module per section of `params.yaml` (`prompt`, `prepare`, ..., `evaluate`), and their loader.

Each stage imports only the modules of the sections it reads, so dvc.yaml's deps (and reruns) follow.
"""
