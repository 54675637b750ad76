"""The PySpark side of sparkring: the barrier-stage driver and the task that bridges to Node."""

__version__ = "0.1.0"
