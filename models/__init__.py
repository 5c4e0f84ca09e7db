"""Model loading and inference: the YOLOv8 detector and CLIP, from a model folder on disk.

Nothing here fetches from the network: ``runtime.prepare_offline`` switches the libraries' own
download and phone-home paths off before they are imported.
"""
