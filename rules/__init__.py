"""Placement rules: the rule model, the natural-language parser, evaluation, moves and the score.

Pure functions over a ``positioning.scene.Scene``; no I/O.
"""
