"""Offline tooling around the detector: generated desk scenes, training, and measuring the worker.

The worker never imports this package (the image does not even hold it): it is what makes the
demo detector (``python -m scripts.train_detector``) and the accuracy figures of the README
(``python -m scripts.accuracy``), on scenes drawn by ``training.synthetic``.
"""
