"""Other trackers' wire protocols, translated in one place each (``compat/mlflow``)."""
