"""Planning: what each model is (labels, modality preset, spacing, patch, network)."""
