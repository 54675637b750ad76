# sparkring: `make demo` runs the main job end to end, `make test` runs the whole test suite.
# Each target installs what it needs and is quick when everything is already there.
SHELL := /bin/bash
.DEFAULT_GOAL := help

NODE_STAMP := node_modules/.package-lock.json
BUILD_STAMP := dist/.tsbuildinfo
TS_SOURCES := $(shell find src bench -name '*.ts' 2>/dev/null) tsconfig.json

.PHONY: help deps build test demo bench lint clean

help:
	@echo "make demo   run the main job end to end"
	@echo "make test   run the whole test suite (prints 'N passed, N failed')"
	@echo "make bench NAME=allreduce ARGS='--json'   run one benchmark"
	@echo "make lint   biome check"

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(NODE_STAMP)

$(BUILD_STAMP): $(NODE_STAMP) $(TS_SOURCES)
	npx tsc -p tsconfig.json
	@touch $@

build: $(BUILD_STAMP)

test: build
	node scripts/run-tests.mjs

demo: build
	node dist/src/cli/main.js demo

bench: build
	node dist/bench/main.js $(NAME) $(ARGS)

lint: deps
	npx biome check .

clean:
	rm -rf dist
