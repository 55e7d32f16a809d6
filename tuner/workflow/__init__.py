"""The run object every entry point drives (``tuner run``, ``tuner.tune``, ``tuner worker``, the
scikit-learn estimators over ``tuner.tune``), and the one writer of what is derived from trials:
the ensemble selection, held-out scores and the final model. ``tuner.results`` only reads."""
