"""The PySpark side of sparkring: the barrier-stage driver, the task that bridges to Node, and
`predict(df, model)`, which scores a DataFrame with a model ctx.saveModel wrote."""

from sparkring.scoring import predict

__version__ = "0.1.0"
__all__ = ["predict", "__version__"]
