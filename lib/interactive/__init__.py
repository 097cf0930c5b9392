"""Interactive segmentation: clicks from a request, guidance channels on the working grid, and the
simulated annotator that trains and benchmarks the click-driven (DeepEdit-style) models."""
