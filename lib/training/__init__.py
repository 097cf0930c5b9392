"""Training: loop helpers, early stopping, diagnostics."""
