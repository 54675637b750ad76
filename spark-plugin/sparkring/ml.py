"""Spark ML: a TypeScript training entry as a `pyspark.ml` Estimator.

    import sparkring.ml
    est = sparkring.ml.Estimator(entry="train.ts", num_workers=2, hparams={"epochs": 5})
    model = Pipeline(stages=[features, est]).fit(df)      # or est.fit(df)
    model.transform(df)                                   # the prediction column appended
    model.write().overwrite().save(path); PipelineModel.load(path)

`fit(df)` trains with sparkring.allreduce on the DataFrame's own session; the entry trains
through ctx.fit and saves what it trained with ctx.saveModel. The Model scores with
sparkring.predict. Saved, a Model holds its params and a copy of the model files, so it loads
where the run directory is gone.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Optional

from pyspark import keyword_only
from pyspark.ml import Estimator as SparkEstimator
from pyspark.ml import Model as SparkModel
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import (
    DefaultParamsReadable,
    DefaultParamsReader,
    DefaultParamsWritable,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)

from sparkring.api import RunError, allreduce
from sparkring.error_codes import PREDICT_MODEL
from sparkring.failures import JobError
from sparkring.driver.spark_session import is_connect
from sparkring.executor.scoring import DEFAULT_BATCH_SIZE, MODEL_FILES, model_dir_of, predict


class _Shared(Params):
    tfBackend: Param[str] = Param(
        Params._dummy(), "tfBackend", "the TensorFlow to train and score on: auto, native, wasm or cpu", TypeConverters.toString
    )
    predictionCol: Param[str] = Param(
        Params._dummy(), "predictionCol", "the prediction column (default: the name the model was saved with)", TypeConverters.toString
    )

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(tfBackend="auto")


class Estimator(SparkEstimator["Model"], _Shared, DefaultParamsWritable, DefaultParamsReadable["Estimator"]):
    """Trains `entry` (a .ts or .js module whose train(ctx) calls ctx.fit and ctx.saveModel) on
    `num_workers` executors of the DataFrame's session, with the DataFrame's rows as ctx.data."""

    entry: Param[str] = Param(Params._dummy(), "entry", "the training module (.ts or .js)", TypeConverters.toString)
    numWorkers: Param[int] = Param(Params._dummy(), "numWorkers", "Spark executors to train on", TypeConverters.toInt)
    hparams: Param[dict[str, Any]] = Param(Params._dummy(), "hparams", "the entry's ctx.hparams", TypeConverters.identity)
    maxAttempts: Param[int] = Param(Params._dummy(), "maxAttempts", "attempts before fit fails", TypeConverters.toInt)
    experiments: Param[str] = Param(Params._dummy(), "experiments", "the experiments folder runs are recorded in", TypeConverters.toString)
    runName: Param[str] = Param(Params._dummy(), "runName", "the run's name (default: the entry's file name)", TypeConverters.toString)

    @keyword_only
    def __init__(
        self,
        *,
        entry: Optional[str] = None,
        num_workers: int = 2,
        hparams: Optional[dict[str, Any]] = None,
        max_attempts: int = 1,
        experiments: Optional[str] = None,
        name: Optional[str] = None,
        tf_backend: str = "auto",
        prediction_col: Optional[str] = None,
    ) -> None:
        super().__init__()
        self._setDefault(numWorkers=2, hparams={}, maxAttempts=1)
        given = {
            "entry": entry and os.path.abspath(entry),
            "numWorkers": num_workers,
            "hparams": hparams,
            "maxAttempts": max_attempts,
            "experiments": experiments and os.path.abspath(experiments),
            "runName": name,
            "tfBackend": tf_backend,
            "predictionCol": prediction_col,
        }
        self._set(**{k: v for k, v in given.items() if v is not None})

    def _fit(self, dataset: Any) -> "Model":
        if not self.isDefined(self.entry):
            raise RunError("sparkring.ml.Estimator needs entry=: the training module (.ts or .js)", "input")
        run = allreduce(
            self.getOrDefault(self.entry),
            dataset,
            num_workers=self.getOrDefault(self.numWorkers),
            hparams=dict(self.getOrDefault(self.hparams)),
            max_attempts=self.getOrDefault(self.maxAttempts),
            experiments=self.getOrDefault(self.experiments) if self.isDefined(self.experiments) else None,
            name=self.getOrDefault(self.runName) if self.isDefined(self.runName) else None,
            tf_backend=self.getOrDefault(self.tfBackend),
        )
        try:
            model_dir = model_dir_of(run.dir)
        except JobError as e:  # its message names the files missing
            raise RunError(
                f"{e}; an Estimator's entry ends with `await ctx.saveModel(model)`",
                "input",
                code=PREDICT_MODEL,
                dir=run.dir,
            ) from None
        model = Model(model_dir=model_dir, tf_backend=self.getOrDefault(self.tfBackend))
        if self.isDefined(self.predictionCol):
            model._set(predictionCol=self.getOrDefault(self.predictionCol))
        model.run = run
        return model


class Model(SparkModel, _Shared, MLWritable, MLReadable["Model"]):
    """A model ctx.saveModel wrote, as a Transformer: `transform(df)` appends its predictions."""

    modelDir: Param[str] = Param(Params._dummy(), "modelDir", "the folder ctx.saveModel wrote", TypeConverters.toString)
    batchSize: Param[int] = Param(Params._dummy(), "batchSize", "rows per Arrow batch scored", TypeConverters.toInt)

    @keyword_only
    def __init__(self, *, model_dir: Optional[str] = None, tf_backend: str = "auto", batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__()
        self._setDefault(batchSize=DEFAULT_BATCH_SIZE)
        self._set(tfBackend=tf_backend, batchSize=batch_size)
        if model_dir is not None:
            self._set(modelDir=os.path.abspath(model_dir))
        # The training run, for a Model that fit returned (None for one loaded from disk).
        self.run: Any = None

    def _transform(self, dataset: Any) -> Any:
        return predict(
            dataset,
            self.getOrDefault(self.modelDir),
            batch_size=self.getOrDefault(self.batchSize),
            output=self.getOrDefault(self.predictionCol) if self.isDefined(self.predictionCol) else None,
            tf_backend=self.getOrDefault(self.tfBackend),
        )

    def write(self) -> MLWriter:
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader["Model"]:
        return _ModelReader()


# Written by hand: DefaultParamsWriter saves params only, and a Model's files must travel with it.
class _ModelWriter(MLWriter):
    """Params metadata as Spark ML writes it (so Pipelines load it), and the model's files in model/."""

    def __init__(self, instance: Model) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        source = self.instance.getOrDefault(self.instance.modelDir)
        params = {p.name: v for p, v in self.instance._paramMap.items()}
        params["modelDir"] = "model"  # relative: the saved folder can move
        DefaultParamsWriter.saveMetadata(self.instance, path, _spark_for_metadata(self), paramMap=params)
        target = os.path.join(_local(path), "model")
        os.makedirs(target, exist_ok=True)
        for name in MODEL_FILES:
            shutil.copy(os.path.join(source, name), target)


class _ModelReader(MLReader[Model]):
    def load(self, path: str) -> Model:
        metadata = DefaultParamsReader.loadMetadata(path, _spark_for_metadata(self))
        model = Model()
        DefaultParamsReader.getAndSetParams(model, metadata)
        model._set(modelDir=os.path.join(_local(path), "model"))
        return model


def _spark_for_metadata(io: Any) -> Any:
    """What Spark ML's metadata helpers take: the session over Spark Connect (PySpark 4's helpers
    write the metadata through it), else the SparkContext (3.5's take only that)."""
    return io.sparkSession if is_connect(io.sparkSession) else io.sc


def _local(path: str) -> str:
    """A save path as a local folder: the model files are copied with the driver's filesystem."""
    if path.startswith("file:"):
        path = path[len("file:") :].lstrip("/")
        path = "/" + path
    if "://" in path:
        raise RunError(
            f"sparkring.ml.Model saves to a local or shared-mount folder, not {path}: save it to a path on this machine",
            "input",
        )
    return os.path.abspath(path)
