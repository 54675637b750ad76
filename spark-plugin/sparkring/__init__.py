"""sparkring for PySpark: `allreduce(entry, df, ...)` trains TypeScript (TensorFlow.js) on the
caller's own SparkSession and DataFrame; `launch(entry, grid=...)` searches its hyperparameters
there; `predict(df, model)` scores a DataFrame with a model
ctx.saveModel wrote; `register(run, name)` adds it to the repository `sparkring serve` serves. The rest is the barrier-stage driver and the task that bridges to Node."""

from sparkring.api import Run, RunError, Search, Trial, allreduce, launch
from sparkring.executor.scoring import predict
from sparkring.models import register

__version__ = "0.1.0"
__all__ = ["Run", "RunError", "Search", "Trial", "allreduce", "launch", "predict", "register", "__version__"]
