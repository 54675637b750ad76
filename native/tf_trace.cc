// Step tracing for tfjs-node's binding: while a trace is open, every op the binding executes eagerly
// is also added to a TF_Graph, so one training step run by tfjs becomes a TensorFlow function
// (TF_GraphToFunction) that the eager context runs as a single op, with Grappler's rewrites, as
// tf.function does for Keras. Written by hand: tfjs-node has no graph mode, and nothing else
// records the ops its kernels run.
//
// Compiled together with tfjs-node's own binding/*.cc (scripts/build-tf-binding.mjs adds the
// declarations below to TFJSBackend and calls TraceOp from ExecuteOp).
//
//   beginTrace(inputIds: number[])          the step's inputs (batch, weights) become placeholders
//   endTrace(name: string|null, outputIds)  -> Buffer: the graph in a canonical form (a caller
//                                           compares two traces);
//                                           with a name, registers the function under that name
//   endTrace(name, outputIds, splitAt)      -> { graph, cuts }: also split in two functions for
//                                           overlap (native/tf_overlap.cc)
//   abortTrace()
//
// Tensors a traced op reads that are neither inputs nor traced outputs (tfjs's scalars, a loss's
// constants) are captured by value as Const nodes; the caller proves a step is deterministic by
// tracing it twice and comparing the graphs, which hold those values.
#include <node_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "tensorflow/c/c_api.h"
#include "tensorflow/c/eager/c_api.h"
#include "tf_auto_status.h"
#include "tfjs_backend.h"

namespace tfnodejs {

struct Trace {
  TF_Graph *graph = TF_NewGraph();
  std::unordered_map<int32_t, TF_Output> outputs;  // tensor id -> where the graph computes it
  std::vector<TF_Output> inputs;
  int nodes = 0;
  std::string error;  // the first op that could not be mirrored; endTrace reports it
  ~Trace() { TF_DeleteGraph(graph); }
};

namespace {

napi_value Throw(napi_env env, const std::string &message) {
  napi_throw_error(env, "SPARKRING_TRACE", message.c_str());
  return nullptr;
}

bool ReadVarint(const uint8_t *&p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; p < end && shift < 64; shift += 7) {
    uint8_t b = *p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

// One input argument of an OpDef: a list when number_attr or type_list_attr is set.
struct InputArg {
  std::string number_attr;
  std::string type_list_attr;
};

// OpDef.input_arg (field 2) from the serialized OpDef: only the fields that decide how many
// tensors an argument takes. Protobuf wire format read by hand (no protobuf library in the wheel's
// C API).
std::vector<InputArg> ParseInputArgs(const uint8_t *p, const uint8_t *end) {
  std::vector<InputArg> args;
  while (p < end) {
    uint64_t key, len;
    if (!ReadVarint(p, end, &key)) break;
    uint32_t field = key >> 3, wire = key & 7;
    if (wire == 0) {
      uint64_t ignored;
      ReadVarint(p, end, &ignored);
      continue;
    }
    if (wire != 2 || !ReadVarint(p, end, &len) || len > static_cast<uint64_t>(end - p)) break;
    const uint8_t *sub = p, *sub_end = p + len;
    p += len;
    if (field != 2) continue;
    InputArg arg;
    while (sub < sub_end) {
      uint64_t k, l;
      if (!ReadVarint(sub, sub_end, &k)) break;
      if ((k & 7) == 0) {
        uint64_t ignored;
        ReadVarint(sub, sub_end, &ignored);
        continue;
      }
      if ((k & 7) != 2 || !ReadVarint(sub, sub_end, &l) || l > static_cast<uint64_t>(sub_end - sub)) break;
      std::string s(reinterpret_cast<const char *>(sub), l);
      if ((k >> 3) == 5) arg.number_attr = s;
      if ((k >> 3) == 6) arg.type_list_attr = s;
      sub += l;
    }
    args.push_back(arg);
  }
  return args;
}

std::string GetString(napi_env env, napi_value v) {
  size_t len = 0;
  napi_get_value_string_utf8(env, v, nullptr, 0, &len);
  std::string s(len, '\0');
  napi_get_value_string_utf8(env, v, &s[0], len + 1, &len);
  return s;
}

bool IsArrayValue(napi_env env, napi_value v) {
  bool is = false;
  napi_is_array(env, v, &is);
  return is;
}

std::vector<double> NumberList(napi_env env, napi_value v) {
  uint32_t n = 0;
  napi_get_array_length(env, v, &n);
  std::vector<double> out(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_get_element(env, v, i, &e);
    napi_get_value_double(env, e, &out[i]);
  }
  return out;
}

// The same attributes tfjs-node's AssignOpAttr gives the eager op, on a graph operation.
// Returns the integer attributes by name (list lengths are read from them).
void SetAttrs(napi_env env, TF_OperationDescription *desc, napi_value attrs,
              const std::unordered_map<std::string, std::string> &renames,
              std::unordered_map<std::string, int64_t> *ints) {
  uint32_t n = 0;
  napi_get_array_length(env, attrs, &n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value attr, name_v, type_v, value;
    napi_get_element(env, attrs, i, &attr);
    napi_get_named_property(env, attr, "name", &name_v);
    napi_get_named_property(env, attr, "type", &type_v);
    napi_get_named_property(env, attr, "value", &value);
    std::string name = GetString(env, name_v);
    auto renamed = renames.find(name);
    if (renamed != renames.end()) name = renamed->second;
    if (name.empty()) continue;
    int32_t type = 0;
    napi_get_value_int32(env, type_v, &type);
    const char *a = name.c_str();
    switch (type) {
      case TF_ATTR_STRING: {
        std::string s = GetString(env, value);
        TF_SetAttrString(desc, a, s.data(), s.size());
        break;
      }
      case TF_ATTR_INT:
        if (IsArrayValue(env, value)) {
          std::vector<double> d = NumberList(env, value);
          std::vector<int64_t> v(d.begin(), d.end());
          TF_SetAttrIntList(desc, a, v.data(), static_cast<int>(v.size()));
        } else {
          int64_t v = 0;
          napi_get_value_int64(env, value, &v);
          TF_SetAttrInt(desc, a, v);
          (*ints)[name] = v;
        }
        break;
      case TF_ATTR_FLOAT:
        if (IsArrayValue(env, value)) {
          std::vector<double> d = NumberList(env, value);
          std::vector<float> v(d.begin(), d.end());
          TF_SetAttrFloatList(desc, a, v.data(), static_cast<int>(v.size()));
        } else {
          double v = 0;
          napi_get_value_double(env, value, &v);
          TF_SetAttrFloat(desc, a, static_cast<float>(v));
        }
        break;
      case TF_ATTR_BOOL:
        if (IsArrayValue(env, value)) {
          uint32_t len = 0;
          napi_get_array_length(env, value, &len);
          std::vector<unsigned char> v(len);
          for (uint32_t k = 0; k < len; k++) {
            napi_value e;
            bool b = false;
            napi_get_element(env, value, k, &e);
            napi_get_value_bool(env, e, &b);
            v[k] = b ? 1 : 0;
          }
          TF_SetAttrBoolList(desc, a, v.data(), static_cast<int>(len));
        } else {
          bool b = false;
          napi_get_value_bool(env, value, &b);
          TF_SetAttrBool(desc, a, b ? 1 : 0);
        }
        break;
      case TF_ATTR_TYPE: {
        int32_t t = 0;
        napi_get_value_int32(env, value, &t);
        TF_SetAttrType(desc, a, static_cast<TF_DataType>(t));
        break;
      }
      case TF_ATTR_SHAPE: {
        std::vector<double> d = NumberList(env, value);
        std::vector<int64_t> v(d.begin(), d.end());
        TF_SetAttrShape(desc, a, v.data(), static_cast<int>(v.size()));
        break;
      }
      default:
        break;
    }
  }
}

// The value of a boolean attribute tfjs-node gives an op (false when it gives none).
bool BoolAttr(napi_env env, napi_value attrs, const char *wanted) {
  uint32_t n = 0;
  napi_get_array_length(env, attrs, &n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value attr, name_v, value;
    napi_get_element(env, attrs, i, &attr);
    napi_get_named_property(env, attr, "name", &name_v);
    if (GetString(env, name_v) != wanted) continue;
    bool b = false;
    napi_get_named_property(env, attr, "value", &value);
    napi_get_value_bool(env, value, &b);
    return b;
  }
  return false;
}

std::vector<int32_t> IdList(napi_env env, napi_value v) {
  std::vector<double> d = NumberList(env, v);
  return std::vector<int32_t>(d.begin(), d.end());
}

TFJSBackend *BackendOf(napi_env env) {
  void *data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<TFJSBackend *>(data);
}

napi_value BeginTraceJs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  if (argc < 1 || !IsArrayValue(env, args[0])) return Throw(env, "beginTrace(inputIds: number[])");
  return BackendOf(env)->BeginTrace(env, IdList(env, args[0]));
}

napi_value EndTraceJs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  if (argc < 2 || !IsArrayValue(env, args[1])) {
    return Throw(env, "endTrace(name: string | null, outputIds: number[], splitAt?: number)");
  }
  napi_valuetype t;
  napi_typeof(env, args[0], &t);
  std::string name = t == napi_string ? GetString(env, args[0]) : std::string();
  int32_t split_at = -1;
  if (argc == 3) napi_get_value_int32(env, args[2], &split_at);
  return BackendOf(env)->EndTrace(env, name, IdList(env, args[1]), split_at);
}

napi_value AbortTraceJs(napi_env env, napi_callback_info info) {
  BackendOf(env)->AbortTrace();
  return nullptr;
}

}  // namespace

napi_value TFJSBackend::BeginTrace(napi_env env, const std::vector<int32_t> &input_ids) {
  AbortTrace();
  trace_ = new Trace();
  for (size_t i = 0; i < input_ids.size(); i++) {
    auto found = tfe_handle_map_.find(input_ids[i]);
    if (found == tfe_handle_map_.end()) {
      AbortTrace();
      return Throw(env, "beginTrace: input tensor " + std::to_string(input_ids[i]) + " is not in TensorFlow");
    }
    TF_AutoStatus status;
    TFE_TensorHandle *h = found->second;
    int dims = TFE_TensorHandleNumDims(h, status.status);
    std::vector<int64_t> shape(dims);
    for (int d = 0; d < dims; d++) shape[d] = TFE_TensorHandleDim(h, d, status.status);
    std::string name = "input" + std::to_string(i);
    TF_OperationDescription *desc = TF_NewOperation(trace_->graph, "Placeholder", name.c_str());
    TF_SetAttrType(desc, "dtype", TFE_TensorHandleDataType(h));
    TF_SetAttrShape(desc, "shape", shape.data(), dims);
    TF_Operation *op = TF_FinishOperation(desc, status.status);
    if (TF_GetCode(status.status) != TF_OK) {
      std::string message = TF_Message(status.status);
      AbortTrace();
      return Throw(env, "beginTrace: " + message);
    }
    trace_->inputs.push_back(TF_Output{op, 0});
    trace_->outputs[input_ids[i]] = TF_Output{op, 0};
  }
  return nullptr;
}

void TFJSBackend::AbortTrace() {
  delete trace_;
  trace_ = nullptr;
}

// Where the graph has tensor `id`: a traced output, an input, or else its value as a Const.
static bool GraphInput(Trace *trace, std::unordered_map<int32_t, TFE_TensorHandle *> &handles, int32_t id,
                       TF_Output *out) {
  auto known = trace->outputs.find(id);
  if (known != trace->outputs.end()) {
    *out = known->second;
    return true;
  }
  auto found = handles.find(id);
  if (found == handles.end()) return false;
  TF_AutoStatus status;
  TF_Tensor *value = TFE_TensorHandleResolve(found->second, status.status);
  if (TF_GetCode(status.status) != TF_OK) return false;
  std::string name = "const" + std::to_string(trace->nodes++);
  TF_OperationDescription *desc = TF_NewOperation(trace->graph, "Const", name.c_str());
  TF_SetAttrType(desc, "dtype", TF_TensorType(value));
  TF_SetAttrTensor(desc, "value", value, status.status);
  TF_Operation *op = TF_FinishOperation(desc, status.status);
  TF_DeleteTensor(value);
  if (TF_GetCode(status.status) != TF_OK) return false;
  *out = TF_Output{op, 0};
  trace->outputs[id] = *out;
  return true;
}

// Known static shape of a graph tensor (-1 for an unknown dimension); empty when the rank is unknown.
static std::vector<int64_t> ShapeOf(TF_Graph *graph, TF_Output t) {
  TF_AutoStatus status;
  int rank = TF_GraphGetTensorNumDims(graph, t, status.status);
  if (rank < 0 || TF_GetCode(status.status) != TF_OK) return {};
  std::vector<int64_t> dims(rank);
  TF_GraphGetTensorShape(graph, t, dims.data(), rank, status.status);
  return dims;
}

// Whether Sum(x, axes) sums every axis but the last, as a bias's gradient does (BiasAddGrad).
static bool IsBiasGradient(TF_Graph *graph, TF_Output x, TF_Output axes) {
  std::vector<int64_t> shape = ShapeOf(graph, x);
  if (shape.size() < 2 || std::string(TF_OperationOpType(axes.oper)) != "Const") return false;
  TF_AutoStatus status;
  TF_Tensor *value = nullptr;
  TF_OperationGetAttrTensor(axes.oper, "value", &value, status.status);
  if (TF_GetCode(status.status) != TF_OK || value == nullptr) return false;
  bool match = TF_TensorType(value) == TF_INT32 && TF_TensorElementCount(value) == static_cast<int64_t>(shape.size()) - 1;
  const int32_t *a = static_cast<const int32_t *>(TF_TensorData(value));
  for (int64_t i = 0; match && i < TF_TensorElementCount(value); i++) match = a[i] == i;
  TF_DeleteTensor(value);
  return match;
}

// The op TensorFlow's graph passes recognise for what tfjs-node runs: tfjs's matMul is always
// BatchMatMulV2 and its bias is an Add, so Grappler's remapper and oneDNN's layout pass, which fuse
// MatMul or Conv2D with BiasAdd and Relu (as Keras's graphs have them), would find nothing to fuse.
// Returns the op type to build and the attribute renames it needs; the values are the same.
static std::string GraphOpFor(TF_Graph *graph, const std::string &op_name, const std::vector<TF_Output> &inputs,
                              bool keep_dims, std::unordered_map<std::string, std::string> *renames) {
  if (op_name == "BatchMatMulV2" && inputs.size() == 2 && ShapeOf(graph, inputs[0]).size() == 2 &&
      ShapeOf(graph, inputs[1]).size() == 2) {
    (*renames)["adj_x"] = "transpose_a";
    (*renames)["adj_y"] = "transpose_b";
    return "MatMul";
  }
  if ((op_name == "Add" || op_name == "AddV2") && inputs.size() == 2) {
    std::vector<int64_t> value = ShapeOf(graph, inputs[0]), bias = ShapeOf(graph, inputs[1]);
    if (value.size() >= 2 && bias.size() == 1 && bias[0] >= 0 && bias[0] == value.back()) return "BiasAdd";
  }
  if (op_name == "Sum" && !keep_dims && inputs.size() == 2 && IsBiasGradient(graph, inputs[0], inputs[1])) {
    (*renames)["keep_dims"] = "";  // BiasAddGrad has neither attribute
    (*renames)["Tidx"] = "";
    return "BiasAddGrad";
  }
  return op_name;
}

void TFJSBackend::TraceOp(napi_env env, const std::string &op_name, napi_value attrs, napi_value input_ids,
                          int num_outputs) {
  if (!trace_ || !trace_->error.empty()) return;
  std::vector<int32_t> ids = IdList(env, input_ids);
  std::vector<TF_Output> inputs(ids.size());
  for (size_t k = 0; k < ids.size(); k++) {
    if (!GraphInput(trace_, tfe_handle_map_, ids[k], &inputs[k])) {
      trace_->error = op_name + ": input " + std::to_string(k) + " is not a tensor TensorFlow holds";
      return;
    }
  }
  std::unordered_map<std::string, std::string> renames;
  std::string type = GraphOpFor(trace_->graph, op_name, inputs, BoolAttr(env, attrs, "keep_dims"), &renames);

  TF_AutoStatus status;
  TF_Buffer *op_def = TF_NewBuffer();
  TF_GraphGetOpDef(trace_->graph, type.c_str(), op_def, status.status);
  std::vector<InputArg> args;
  if (TF_GetCode(status.status) == TF_OK) {
    const uint8_t *p = static_cast<const uint8_t *>(op_def->data);
    args = ParseInputArgs(p, p + op_def->length);
  }
  TF_DeleteBuffer(op_def);
  if (TF_GetCode(status.status) != TF_OK) {
    trace_->error = op_name + ": " + TF_Message(status.status);
    return;
  }
  std::string name = "op" + std::to_string(trace_->nodes++);
  TF_OperationDescription *desc = TF_NewOperation(trace_->graph, type.c_str(), name.c_str());
  std::unordered_map<std::string, int64_t> ints;
  SetAttrs(env, desc, attrs, renames, &ints);
  size_t next = 0;
  for (const InputArg &arg : args) {
    size_t count = 1;
    bool list = !arg.number_attr.empty() || !arg.type_list_attr.empty();
    if (!arg.number_attr.empty()) {
      auto n = ints.find(arg.number_attr);
      count = n == ints.end() ? inputs.size() - next : static_cast<size_t>(n->second);
    } else if (!arg.type_list_attr.empty()) {
      count = inputs.size() - next;
    }
    if (next + count > inputs.size()) {
      trace_->error = op_name + ": its inputs do not match the arguments of " + type;
      return;
    }
    if (list) {
      TF_AddInputList(desc, inputs.data() + next, static_cast<int>(count));
    } else {
      TF_AddInput(desc, inputs[next]);
    }
    next += count;
  }
  TF_Operation *op = TF_FinishOperation(desc, status.status);
  if (TF_GetCode(status.status) != TF_OK) {
    trace_->error = op_name + ": " + TF_Message(status.status);
    return;
  }
  // ExecuteOp gives its outputs the next ids, in order (InsertHandle).
  for (int i = 0; i < num_outputs; i++) trace_->outputs[next_tensor_id_ + i] = TF_Output{op, i};
}

// The graph's nodes in creation order, each NodeDef with its attributes sorted: a GraphDef's
// attribute maps serialize in no fixed order, so two equal graphs can differ byte for byte.
static std::string CanonicalGraph(TF_Graph *graph, TF_Status *status) {
  std::string out;
  size_t pos = 0;
  TF_Operation *op;
  while ((op = TF_GraphNextOperation(graph, &pos)) != nullptr) {
    TF_Buffer *node = TF_NewBuffer();
    TF_OperationToNodeDef(op, node, status);
    if (TF_GetCode(status) != TF_OK) {
      TF_DeleteBuffer(node);
      return out;
    }
    const uint8_t *p = static_cast<const uint8_t *>(node->data), *end = p + node->length;
    std::vector<std::string> attrs;
    while (p < end) {
      const uint8_t *field_start = p;
      uint64_t key, len = 0;
      if (!ReadVarint(p, end, &key)) break;
      if ((key & 7) == 2) {
        if (!ReadVarint(p, end, &len) || len > static_cast<uint64_t>(end - p)) break;
        p += len;
      } else if ((key & 7) == 0) {
        uint64_t ignored;
        ReadVarint(p, end, &ignored);
      } else {
        break;
      }
      std::string field(reinterpret_cast<const char *>(field_start), p - field_start);
      if ((key >> 3) == 5) {
        attrs.push_back(field);
      } else {
        out += field;
      }
    }
    std::sort(attrs.begin(), attrs.end());
    for (const std::string &a : attrs) out += a;
    out += '\n';
    TF_DeleteBuffer(node);
  }
  return out;
}

// With SPARKRING_TRACE_DUMP=DIR, a compiled step's graph is written to DIR/NAME.pb (a GraphDef whose
// inputs are the Placeholders input0, input1, ...) and its outputs, one "node:index" a line, to
// DIR/NAME.outputs: to profile it or read it in TensorBoard.
static void DumpGraph(TF_Graph *graph, const std::string &name, const std::vector<TF_Output> &outs) {
  const char *dir = std::getenv("SPARKRING_TRACE_DUMP");
  if (dir == nullptr || *dir == '\0') return;
  TF_AutoStatus status;
  TF_Buffer *def = TF_NewBuffer();
  TF_GraphToGraphDef(graph, def, status.status);
  if (TF_GetCode(status.status) == TF_OK) {
    std::ofstream(std::string(dir) + "/" + name + ".pb", std::ios::binary)
        .write(static_cast<const char *>(def->data), static_cast<std::streamsize>(def->length));
    std::ofstream outputs(std::string(dir) + "/" + name + ".outputs");
    for (const TF_Output &o : outs) outputs << TF_OperationName(o.oper) << ":" << o.index << "\n";
  }
  TF_DeleteBuffer(def);
}

napi_value TFJSBackend::EndTrace(napi_env env, const std::string &name, const std::vector<int32_t> &output_ids,
                                 int32_t split_at) {
  if (!trace_) return Throw(env, "endTrace: no trace is open");
  if (!trace_->error.empty()) {
    std::string error = trace_->error;
    AbortTrace();
    return Throw(env, "endTrace: the step could not be traced at " + error);
  }
  std::vector<TF_Output> outs;
  for (int32_t id : output_ids) {
    auto found = trace_->outputs.find(id);
    if (found == trace_->outputs.end()) {
      AbortTrace();
      return Throw(env, "endTrace: output tensor " + std::to_string(id) + " was not computed in the trace");
    }
    outs.push_back(found->second);
  }
  TF_AutoStatus status;
  std::string canonical = CanonicalGraph(trace_->graph, status.status);
  napi_value result = nullptr;
  void *copy = nullptr;
  if (TF_GetCode(status.status) == TF_OK) {
    napi_create_buffer(env, canonical.size(), &copy, &result);
    std::memcpy(copy, canonical.data(), canonical.size());
  }
  if (TF_GetCode(status.status) == TF_OK && !name.empty()) DumpGraph(trace_->graph, name, outs);
  if (TF_GetCode(status.status) == TF_OK && !name.empty()) {
    TF_Function *fn = TF_GraphToFunction(trace_->graph, name.c_str(), 0, -1, nullptr,
                                         static_cast<int>(trace_->inputs.size()), trace_->inputs.data(),
                                         static_cast<int>(outs.size()), outs.data(), nullptr, nullptr, nullptr,
                                         status.status);
    if (TF_GetCode(status.status) == TF_OK) {
      TFE_ContextAddFunction(tfe_context_, fn, status.status);
      TF_DeleteFunction(fn);
    }
  }
  std::string message = TF_GetCode(status.status) == TF_OK ? "" : TF_Message(status.status);
  if (!message.empty() || split_at < 0) {
    AbortTrace();
    if (!message.empty()) return Throw(env, "endTrace: " + message);
    return result;
  }
  napi_value cuts = nullptr;
  if (name.empty()) {
    napi_get_null(env, &cuts);
  } else {
    cuts = SplitForOverlap(env, trace_->graph, trace_->inputs, outs, static_cast<size_t>(split_at), name);
  }
  AbortTrace();
  if (cuts == nullptr) return nullptr;  // it threw
  napi_value both;
  napi_create_object(env, &both);
  napi_set_named_property(env, both, "graph", result);
  napi_set_named_property(env, both, "cuts", cuts);
  return both;
}

void RegisterTraceExports(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"beginTrace", nullptr, BeginTraceJs, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"endTrace", nullptr, EndTraceJs, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"abortTrace", nullptr, AbortTraceJs, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 3, props);
}

}  // namespace tfnodejs
