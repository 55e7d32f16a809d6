"""Estimators of tuner's own (the Keras MLP); a leaf: imports nothing else of tuner."""
