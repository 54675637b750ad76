# sparkring: `make demo` runs the main job end to end, `make test` runs the whole test suite.
# Each target installs what it needs and is quick when everything is already there.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_STAMP := node_modules/.package-lock.json
VENV := .venv
VENV_STAMP := $(VENV)/.installed
PYTHON ?= python3
BUILD_STAMP := dist/.tsbuildinfo
TS_SOURCES := $(shell find src bench cluster -name '*.ts' 2>/dev/null) tsconfig.json

.PHONY: help setup deps venv redis livy yarn spark-connect tfjs-converter serve-clients build test unit smoke-pyspark4 demo bench lint clean cluster-up cluster-down wheel

help:
	@echo "make demo   run the main job end to end"
	@echo "make test   lint, typecheck and the whole test suite (prints 'N passed, N failed')"
	@echo "make unit   the unit tests alone, without Spark (about 80 s)"
	@echo "make wheel  the Python package with the Node runtime in it, for pip (dist-wheel/)"
	@echo "make smoke-pyspark4   the Python API on the newest PySpark 4 (its own venv in .cache)"
	@echo "make bench NAME=allreduce ARGS='--json'   run one benchmark"
	@echo "make lint   biome check"
	@echo "make cluster-up HOSTS=3 / make cluster-down   a multi-host Spark cluster on this machine (root)"

# `npm install` honours the lockfile; `npm ci` (npm 11) rejects it because @biomejs/biome lists
# optional platform packages that are not published for its version. Scripts are skipped:
# tfjs-node's would download libtensorflow (unreachable; its binding is built below instead), and
# our own postinstall is the $(NATIVE) target.
$(NODE_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund --ignore-scripts
	@touch $@

deps: $(NODE_STAMP)

# The pinned pyspark (with its own spark-submit and jars), pyarrow, pytest, the demo's data source and
# the workers' TensorFlow (tensorflow-cpu from PyPI).
$(VENV_STAMP): spark-plugin/pyproject.toml spark-plugin/constraints.txt
	@command -v java >/dev/null || { echo "sparkring needs Java 17 (e.g. apt-get install openjdk-17-jre-headless)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c spark-plugin/constraints.txt -e 'spark-plugin[spark,test,demo,tf]'
	@touch $@

venv: $(VENV_STAMP)

# redis-server (the embedded default's private Redis, and the tests' own) from Debian.
redis:
	@command -v redis-server >/dev/null || { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null || { echo "sparkring needs redis-server (apt-get install redis-server)"; exit 1; }; }

# A real Livy server and a real single-machine YARN for the tests, from Maven Central jars
# (scripts/NAME/pom.xml says which).
livy yarn:
	@command -v mvn >/dev/null || { echo "the Livy and YARN tests need Maven (apt-get install maven)"; exit 1; }
	scripts/maven-jars.sh $@

# PySpark 4's own Spark Connect server (its venv's Python is also the PySpark 4 client and the
# executors' Python) and a thin client with pyspark-client alone, for the Connect tests and
# `npm run bench -- connect` (scripts/spark-connect/*-requirements.txt say why).
CONNECT_STAMP := .cache/spark-connect/.installed
$(CONNECT_STAMP): scripts/spark-connect/server-requirements.txt scripts/spark-connect/client-requirements.txt
	for v in server client; do \
	  test -x .cache/spark-connect/$$v/bin/python || $(PYTHON) -m venv .cache/spark-connect/$$v; \
	  .cache/spark-connect/$$v/bin/pip install --quiet --disable-pip-version-check -r scripts/spark-connect/$$v-requirements.txt || exit 1; \
	done
	@touch $@

spark-connect: $(CONNECT_STAMP)


# PyPI's tensorflowjs converter for the saved-model test, in a venv of its own: it pins a TensorFlow
# the workers' venv does not have (scripts/tfjs-converter/requirements.txt says why).
CONVERTER_STAMP := .cache/tfjs-converter/.installed
$(CONVERTER_STAMP): scripts/tfjs-converter/requirements.txt
	test -x .cache/tfjs-converter/bin/python || $(PYTHON) -m venv .cache/tfjs-converter
	.cache/tfjs-converter/bin/pip install --quiet --disable-pip-version-check -r scripts/tfjs-converter/requirements.txt
	@touch $@

tfjs-converter: $(CONVERTER_STAMP)

# PyPI's tritonclient and kserve for the serving tests, and kserve's ModelServer for `npm run bench -- serve`,
# in a venv of their own (scripts/serve-clients/requirements.txt says why).
SERVE_CLIENTS_STAMP := .cache/serve-clients/.installed
$(SERVE_CLIENTS_STAMP): scripts/serve-clients/requirements.txt
	test -x .cache/serve-clients/bin/python || $(PYTHON) -m venv .cache/serve-clients
	.cache/serve-clients/bin/pip install --quiet --disable-pip-version-check -r scripts/serve-clients/requirements.txt
	@touch $@

serve-clients: $(SERVE_CLIENTS_STAMP)

# `npm run build`: tsc, and the bin made executable (tsc writes it without the bit; `npx sparkring` runs it directly).
$(BUILD_STAMP): $(NODE_STAMP) $(TS_SOURCES)
	npm run --silent build
	@touch $@

# The small addons (npm's postinstall builds them too): partitions and ring regions mapped, the ring's
# reductions vectorized, --ring-encrypt's frames sealed in place. sparkring works without them, slower.
NATIVE := native/build/partition_map.node native/build/ring_reduce.node native/build/frame_seal.node
$(NATIVE) &: native/partition_map.cc native/ring_reduce.cc native/frame_seal.cc scripts/build-native.mjs
	node scripts/build-native.mjs

# tfjs-node's binding, built against the venv's TensorFlow (reference E); without it workers train on
# pure-JS tfjs and say so.
TF_BINDING := native/build/tfjs_binding.node
$(TF_BINDING): $(NODE_STAMP) $(VENV_STAMP) scripts/build-tf-binding.mjs native/tf_trace.cc native/tf_data_into.cc
	node scripts/build-tf-binding.mjs

build: $(BUILD_STAMP) $(NATIVE)

# Class-data archives of the embedded Spark's driver and executor JVMs (src/client/submission/jvm-archives.ts):
# they start about 2 s sooner. Made anew when the venv or the maker changes; without them runs start as before.
JVM_ARCHIVES := $(VENV)/sparkring-jvm-archives/executor.jsa
$(JVM_ARCHIVES): $(VENV_STAMP) spark-plugin/sparkring/jvm_archives.py | $(BUILD_STAMP)
	node scripts/jvm-archives.mjs

# After the variables it names: make expands a rule's prerequisites where it reads the rule.
setup: build venv redis $(TF_BINDING) $(JVM_ARCHIVES)

# Lint, the type check of src, bench, cluster and test, the unit tests, pytest, then the end-to-end
# tests (scripts/run-tests.mjs says which folders are which).
test: setup livy yarn spark-connect tfjs-converter serve-clients
	node scripts/run-tests.mjs

unit: setup
	node scripts/run-tests.mjs unit

# The wheel PySpark users pip install: the API and the Node runtime as package data (scripts/build-wheel.mjs).
wheel: setup
	node scripts/build-wheel.mjs

# The Python API on the newest PySpark 4, in a venv of its own (a second PySpark download, so not
# part of `make test`): pip resolves the package's pyspark range to it, and a 2-worker run from a
# user's script trains to one worker's weights. PySpark 4.3 wants pyarrow >= 18 (and 18 is the
# last that runs on the venv's numpy 1.26), so the venv's pyarrow pin gives way to it.
PYSPARK4 := 4.3.0
smoke-pyspark4: setup
	test -x .cache/pyspark4/bin/python || $(PYTHON) -m venv .cache/pyspark4
	.cache/pyspark4/bin/pip install --quiet --disable-pip-version-check -c <(grep -v -E '^(pyspark|pyarrow)=' spark-plugin/constraints.txt) pyspark==$(PYSPARK4) 'pyarrow>=18,<19' -e spark-plugin
	SPARKRING_TEST_PYTHON=$(CURDIR)/.cache/pyspark4/bin/python SPARKRING_TEST_SPARK=$(PYSPARK4) npx vitest run test/bridge/python-api.test.ts -t "one worker's weights"

demo: setup
	node dist/src/cli/main.js demo

bench: build
	node dist/bench/main.js $(NAME) $(ARGS)

# The tests' multi-host cluster for people (needs root): network-namespace hosts on a bridge, each
# with its own address, /dev/shm and local disk, a Spark master here and a worker on each host.
#   make cluster-up HOSTS=3 [LINK=1gbit]; sparkring allreduce ENTRY --master <the URL it prints>
cluster-up: setup
	node dist/cluster/main.js up --hosts $(or $(HOSTS),2) --python $(VENV)/bin/python $(if $(LINK),--link $(LINK))

cluster-down: build
	node dist/cluster/main.js down

lint: deps
	npx biome check .

clean:
	rm -rf dist native/build
