"""The synthetic T1 head phantom of ``sample-data/generate_mri.py``: tissue classes and contrast
(``tissues``), shape helpers (``shapes``), the head's anatomy (``head``), scanning it (``scan``)."""
