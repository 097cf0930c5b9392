"""The synthetic abdominal CT phantom behind ``sample-data/generate.py``, split by anatomy.

``tissues`` (tissue classes, HU, labels), ``shapes`` (implicit-shape geometry), one mixin per region
(``body``: wall, lungs, muscles, spine, ribs; ``organs``: kidneys, spleen, liver; ``vessels``;
``viscera``: heart, stomach, gallbladder, pancreas, bowel), ``patient`` (one patient drawn from a seed
and its structures in painting order), ``scan`` (placement, sampling grid, image synthesis) and
``dicom_series`` (the DICOM writer). Import with ``sample-data`` on ``sys.path``.
"""
