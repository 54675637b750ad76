"""The serving benchmark's peer (bench/serve.ts): KServe 0.21's Python ModelServer serving the
bench model as a user would, converted to Keras by PyPI's tensorflowjs converter and run on the
same TensorFlow as sparkring (2.21, in .cache/serve-clients). The model call is a tf.function, the
fastest plain way to call a Keras model per request, and the per-request access log is off (KServe's
default logs every request at INFO), so the peer runs as its users tune it for speed.

  python serve_peer.py MODEL.h5 NAME HTTP_PORT GRPC_PORT
"""

from __future__ import annotations

import copy
import sys
import uuid
from typing import Any, Optional

import keras
import tensorflow as tf
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve import logging as kserve_logging


class KerasModel(Model):  # type: ignore[misc]
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        model = keras.models.load_model(self.path, compile=False)
        self.call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        self.ready = True
        return self.ready

    async def predict(
        self, payload: InferRequest, headers: Optional[dict[str, str]] = None, response_headers: Optional[dict[str, Any]] = None
    ) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        y = self.call(tf.constant(x)).numpy()
        out = InferOutput(name="prediction", shape=list(y.shape), datatype="FP32")
        out.set_data_from_numpy(y, binary_data=False)
        return InferResponse(model_name=self.name, infer_outputs=[out], response_id=payload.id or str(uuid.uuid4()))


if __name__ == "__main__":
    path, name, http_port, grpc_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    quiet = copy.deepcopy(kserve_logging.KSERVE_LOG_CONFIG)
    quiet["loggers"]["uvicorn.access"]["level"] = "WARNING"
    kserve_logging.configure_logging(quiet)
    ModelServer(http_port=http_port, grpc_port=grpc_port, workers=1, enable_latency_logging=False).start(
        [KerasModel(name, path)]
    )
