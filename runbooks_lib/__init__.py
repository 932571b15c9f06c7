"""k8s-runbooks: the shared library behind the chapter notebooks."""

__version__ = "0.1.0"
