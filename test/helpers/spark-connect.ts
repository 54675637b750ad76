/** The tests' Spark Connect server is the one cluster/spark-connect.ts starts for tests and benchmarks alike. */
export {
  CONNECT_CLIENT_VENV,
  CONNECT_SERVER_PYTHON,
  CONNECT_SPARK_VERSION,
  SparkConnectServer as TestSparkConnect,
} from '../../cluster/spark-connect.js';
