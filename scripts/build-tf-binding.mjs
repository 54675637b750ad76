#!/usr/bin/env node
/**
 * Builds tfjs-node's native binding (the npm package's own binding/*.cc) against the TensorFlow of a
 * Python environment, instead of the libtensorflow that tfjs-node's install script would download
 * (no such download works on a machine or cluster without internet; PyPI's wheels do).
 *
 *   node scripts/build-tf-binding.mjs [--python PY]     default PY: $SPARKRING_TF_PYTHON, else .venv/bin/python
 *
 * The wheel (tensorflow-cpu, or tensorflow with its CUDA extras) carries libtensorflow_cc.so.2 (the
 * eager C API), libtensorflow_framework.so.2 and the C headers under tensorflow/include. The binding
 * links both by soname with a RUNPATH to that wheel, so a worker whose task puts another TensorFlow
 * on LD_LIBRARY_PATH (the executors' own, spark-plugin/sparkring/tensorflow.py) runs on that one.
 *
 * Output: native/build/tfjs_binding.node and native/build/tfjs_binding.json (what it was built
 * against), copied to where tfjs-node's JS looks (lib/napi-v8/). It never fails the install: without
 * tfjs-node, TensorFlow or a compiler, workers train on pure-JS tfjs and say what that costs.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const outDir = join(root, 'native', 'build');
const target = join(outDir, 'tfjs_binding.node');
/** The same binding without a RUNPATH, for the bundle shipped to executors: only their TensorFlow counts. */
const portable = join(outDir, 'tfjs_binding.portable.node');
const manifest = join(outDir, 'tfjs_binding.json');
/** node-pre-gyp's module_path for Node-API 8, where tfjs-node's index.js requires the binding. */
export const BINDING_IN_PACKAGE = join('lib', 'napi-v8', 'tfjs_binding.node');

const say = (line) => console.log(`sparkring: ${line}`);
const fallback = (why) => {
  say(
    `${why}; workers will train on pure-JS tfjs (40x to 300x slower) until this is fixed and setup runs again (\`make setup\` in a checkout, \`sparkring setup\` once installed)`,
  );
  process.exit(0);
};

const pyFlag = process.argv.indexOf('--python');
const python = resolve(
  pyFlag >= 0 ? process.argv[pyFlag + 1] : (process.env.SPARKRING_TF_PYTHON ?? join(root, '.venv', 'bin', 'python')),
);

const tfjsNode = join(root, 'node_modules', '@tensorflow', 'tfjs-node');
if (!existsSync(join(tfjsNode, 'binding', 'tfjs_backend.cc'))) fallback(`@tensorflow/tfjs-node's sources are not in ${tfjsNode}`);

// Found without importing tensorflow (which takes seconds and a few hundred MB).
const FIND_TF = `
import importlib.util, json, os
spec = importlib.util.find_spec("tensorflow")
d = os.path.dirname(spec.origin) if spec and spec.origin else None
print(json.dumps(d))
`;
let tfDir;
try {
  tfDir = JSON.parse(execFileSync(python, ['-c', FIND_TF], { encoding: 'utf8' }));
} catch (err) {
  fallback(`could not ask ${python} for its TensorFlow (${err.message.split('\n')[0]})`);
}
if (!tfDir) fallback(`${python} has no TensorFlow (pip install tensorflow-cpu==2.21.0, or make setup)`);
const libs = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'].map((l) => join(tfDir, l));
const include = join(tfDir, 'include');
for (const need of [...libs, join(include, 'tensorflow', 'c', 'eager', 'c_api.h')]) {
  if (!existsSync(need)) fallback(`the TensorFlow at ${tfDir} lacks ${need}`);
}

const sources = ['tfjs_backend.cc', 'tfjs_binding.cc'].map((s) => join(tfjsNode, 'binding', s));
/** Our additions to the binding (each file says what it is), hooked in by patchBinding. */
const extraSources = ['tf_trace.cc', 'tf_data_into.cc', 'tf_overlap.cc'].map((s) => join(root, 'native', s));
const built = existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8')) : undefined;
const newest = Math.max(
  ...[...sources, ...extraSources, fileURLToPath(import.meta.url), ...libs].map((f) => statSync(f).mtimeMs),
);
const inPackage = join(tfjsNode, BINDING_IN_PACKAGE);
if (existsSync(target) && existsSync(portable) && built?.tfDir === tfDir && statSync(target).mtimeMs >= newest) {
  if (!existsSync(inPackage)) {
    mkdirSync(dirname(inPackage), { recursive: true });
    copyFileSync(target, inPackage);
  }
  process.exit(0);
}

const nodeHeaders = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(dirname(process.execPath)), 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].find((d) => d && existsSync(join(d, 'node_api.h')));
if (!nodeHeaders) fallback("no Node headers (node_api.h) found to build tfjs-node's binding");

mkdirSync(outDir, { recursive: true });
const cxx = process.env.CXX || 'c++';
const started = Date.now();
say(`building tfjs-node's binding against the TensorFlow at ${tfDir} (about 20 s)`);
// tfjs-node's sources with the trace hooks, compiled with native/tf_trace.cc. If a hook's anchor is
// not in this tfjs-node's sources, the binding is built as published, without compiled steps.
const patchedDir = join(outDir, 'binding');
mkdirSync(patchedDir, { recursive: true });
const patched = patchBinding(join(tfjsNode, 'binding'), patchedDir);
if (!patched) say(`tfjs-node's binding sources are not the ones the trace hooks fit; building it without compiled steps`);
const compileList = patched ? [...sources.map((s) => join(patchedDir, s.split('/').pop())), ...extraSources] : sources;
const objects = compileList.map((src) => join(outDir, `${src.split('/').pop()}.o`));
try {
  for (const [i, src] of compileList.entries()) {
    const headers = patched ? patchedDir : join(tfjsNode, 'binding');
    const args = [
      '-O2',
      '-std=c++17',
      '-fPIC',
      '-DNAPI_VERSION=8',
      `-I${headers}`,
      `-I${nodeHeaders}`,
      `-I${include}`,
      '-c',
      src,
    ];
    execFileSync(cxx, [...args, '-o', objects[i]], { stdio: 'inherit' });
  }
  const link = (out, extra) =>
    execFileSync(
      cxx,
      ['-shared', ...objects, '-o', out, `-L${tfDir}`, '-l:libtensorflow_cc.so.2', '-l:libtensorflow_framework.so.2', ...extra],
      { stdio: 'inherit' },
    );
  // RUNPATH (not RPATH): LD_LIBRARY_PATH, set by a task to its executors' TensorFlow, comes first.
  link(target, [`-Wl,-rpath,${tfDir},--enable-new-dtags`]);
  link(portable, []);
} catch (err) {
  fallback(`could not build tfjs-node's binding (${err.message.split('\n')[0]})`);
}
mkdirSync(dirname(inPackage), { recursive: true });
copyFileSync(target, inPackage);
writeFileSync(manifest, JSON.stringify({ tfDir, python, built: new Date().toISOString() }, null, 2));
say(`built ${target} in ${((Date.now() - started) / 1000).toFixed(1)} s`);

/**
 * Copies tfjs-node's binding sources into `to` with the hooks of native/tf_trace.cc and
 * native/tf_data_into.cc: their methods on TFJSBackend, the call that mirrors each executed op while
 * a trace is open, and their exports.
 * Returns false (nothing usable written) when an anchor is missing.
 */
function patchBinding(from, to) {
  const edits = {
    'tfjs_backend.h': [
      [
        'class TFJSBackend {',
        'struct Trace;\nvoid RegisterTraceExports(napi_env env, napi_value exports);\nvoid RegisterDataIntoExports(napi_env env, napi_value exports);\nvoid RegisterOverlapExports(napi_env env, napi_value exports);\n\nclass TFJSBackend {',
      ],
      [
        '  bool is_gpu_device;',
        [
          '  bool is_gpu_device;',
          '  Trace *trace_ = nullptr;',
          '  napi_value BeginTrace(napi_env env, const std::vector<int32_t> &input_ids);',
          '  napi_value EndTrace(napi_env env, const std::string &name, const std::vector<int32_t> &output_ids, int32_t split_at);',
          '  void AbortTrace();',
          '  void TraceOp(napi_env env, const std::string &op_name, napi_value attrs, napi_value input_ids, int num_outputs);',
          '  napi_value TensorDataInto(napi_env env, int32_t id, napi_value target);',
          '  napi_value TensorFromData(napi_env env, napi_value shape, napi_value source);',
          '  napi_value SplitForOverlap(napi_env env, TF_Graph *graph, const std::vector<TF_Output> &inputs, const std::vector<TF_Output> &outs, size_t split_at, const std::string &name);',
          '  napi_value RunFunctionAsync(napi_env env, const std::string &name, const std::vector<int32_t> &input_ids, int num_outputs);',
        ].join('\n'),
      ],
      ['#include <unordered_map>', '#include <unordered_map>\n#include <vector>'],
    ],
    'tfjs_backend.cc': [
      [
        '  TFE_Execute(tfe_op.op, result_handles.data(), &size, tf_status.status);\n  ENSURE_TF_OK_RETVAL(env, tf_status, nullptr);\n',
        '  TFE_Execute(tfe_op.op, result_handles.data(), &size, tf_status.status);\n  ENSURE_TF_OK_RETVAL(env, tf_status, nullptr);\n  if (trace_) TraceOp(env, op_name, op_attr_inputs, input_tensor_ids, num_outputs);\n',
      ],
    ],
    'tfjs_binding.cc': [
      [
        '  nstatus = napi_define_properties(env, exports, ARRAY_SIZE(exports_properties),',
        '  RegisterTraceExports(env, exports);\n  RegisterDataIntoExports(env, exports);\n  RegisterOverlapExports(env, exports);\n  nstatus = napi_define_properties(env, exports, ARRAY_SIZE(exports_properties),',
      ],
    ],
  };
  const out = {};
  for (const [file, pairs] of Object.entries(edits)) {
    let text = readFileSync(join(from, file), 'utf8');
    for (const [anchor, replacement] of pairs) {
      if (text.split(anchor).length !== 2) return false;
      text = text.replace(anchor, replacement);
    }
    out[file] = text;
  }
  for (const file of readdirSync(from)) copyFileSync(join(from, file), join(to, file));
  for (const [file, text] of Object.entries(out)) writeFileSync(join(to, file), text);
  return true;
}
