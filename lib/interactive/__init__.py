"""Interactive segmentation: clicks from a request, guidance channels on the working grid, the
simulated annotator, the click-guided twin's training (``training``) and its answer to a click
(``editing``)."""
