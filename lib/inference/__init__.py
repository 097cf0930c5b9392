"""Inference: sliding-window prediction on the working grid and restoration to the input grid."""
