"""Domain core: preprocessing, data, networks, training, metrics, export. No monailabel import."""
