"""`python -m runner experiment.toml`: prepare, train, evaluate and report one experiment."""
