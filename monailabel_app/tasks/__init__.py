"""MONAI Label tasks wiring ``lib`` into the server: infer, train, active learning, scoring."""
