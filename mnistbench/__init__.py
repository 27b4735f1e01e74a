"""mnistbench: benchmark deep-learning architectures on MNIST with Keras 3."""

import pluggy

__version__ = "0.1.0"

#: Marker for plugin hook implementations: ``@mnistbench.hookimpl``.
hookimpl = pluggy.HookimplMarker("mnistbench")

__all__ = ["__version__", "hookimpl"]
