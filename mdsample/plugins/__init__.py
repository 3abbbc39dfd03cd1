"""First-party plugins; each registers itself through the ``mdsample`` entry-point group like a third party would."""
