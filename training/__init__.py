"""Offline tooling: generated desk scenes, training the detector, and measuring the worker.

The worker never imports this package (the image does not even hold it): it is what makes the
demo detector (``python -m scripts.train_detector``) and the accuracy figures of the README
(``python -m scripts.accuracy``), on scenes drawn by ``training.synthetic``, and the sentence
parser's corpus scores (``python -m scripts.rule_corpus``).
"""
