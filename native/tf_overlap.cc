// Overlapping a step's allreduce with its backward pass, for tfjs-node's binding. Written by hand:
// tfjs-node runs every op synchronously on the JS thread and has no way to split a function.
//
// A traced gradient step (native/tf_trace.cc) is split in two functions. The first computes the
// loss, the extras and the gradients that backpropagation reaches first (a model's last layers,
// which usually hold most of the bytes), and hands on every tensor the rest of the backward pass
// reads; the second computes the remaining gradients from those. JS runs the first, starts the
// second on a libuv worker thread (runFunctionAsync), and allreduces the first's gradients while
// TensorFlow computes the rest: the ring's time hides behind the early layers' backward pass.
//
//   endTrace(name, outputIds, splitAt) -> { graph, cuts: number | null }   besides NAME (the whole
//     step), registers NAME_a(inputs) -> [outputs[0..splitAt), cuts] and
//     NAME_b(inputs, cuts) -> outputs[splitAt..]; cuts is null where the step cannot be split
//     (nothing left for the second function, or a control edge between the two)
//   runFunctionAsync(name, inputIds, numOutputs) -> Promise<TensorInfo[]>   TFE_Execute off the JS thread
#include <node_api.h>

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tensorflow/c/c_api.h"
#include "tensorflow/c/eager/c_api.h"
#include "tf_auto_status.h"
#include "tfjs_backend.h"

namespace tfnodejs {

namespace {

using OpSet = std::unordered_set<TF_Operation *>;

// Every op `outs` depend on, themselves included (data and control edges).
OpSet Ancestors(const std::vector<TF_Output> &outs) {
  OpSet seen;
  std::vector<TF_Operation *> stack;
  for (const TF_Output &o : outs) stack.push_back(o.oper);
  while (!stack.empty()) {
    TF_Operation *op = stack.back();
    stack.pop_back();
    if (!seen.insert(op).second) continue;
    int n = TF_OperationNumInputs(op);
    for (int i = 0; i < n; i++) stack.push_back(TF_OperationInput(TF_Input{op, i}).oper);
    int nc = TF_OperationNumControlInputs(op);
    std::vector<TF_Operation *> control(nc);
    if (nc > 0) TF_OperationGetControlInputs(op, control.data(), nc);
    for (TF_Operation *c : control) stack.push_back(c);
  }
  return seen;
}

// Ops of `all` in graph order (functions need a deterministic body), less `without`.
std::vector<TF_Operation *> Body(TF_Graph *graph, const OpSet &all, const OpSet &without) {
  std::vector<TF_Operation *> body;
  size_t pos = 0;
  TF_Operation *op;
  while ((op = TF_GraphNextOperation(graph, &pos)) != nullptr) {
    if (all.count(op) && !without.count(op)) body.push_back(op);
  }
  return body;
}

bool AddFunction(TFE_Context *ctx, TF_Graph *graph, const std::string &name, const std::vector<TF_Operation *> &body,
                 const std::vector<TF_Output> &inputs, const std::vector<TF_Output> &outputs, TF_Status *status) {
  TF_Function *fn = TF_GraphToFunction(graph, name.c_str(), 0, static_cast<int>(body.size()), body.data(),
                                       static_cast<int>(inputs.size()), inputs.data(),
                                       static_cast<int>(outputs.size()), outputs.data(), nullptr, nullptr, nullptr,
                                       status);
  if (TF_GetCode(status) != TF_OK) return false;
  TFE_ContextAddFunction(ctx, fn, status);
  TF_DeleteFunction(fn);
  return TF_GetCode(status) == TF_OK;
}

struct AsyncRun {
  explicit AsyncRun(TFJSBackend *b) : backend(b) {}
  TFJSBackend *backend;
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  TFE_Op *op = nullptr;
  std::vector<TFE_TensorHandle *> outputs;
  TF_Status *status = TF_NewStatus();
  ~AsyncRun() {
    if (op) TFE_DeleteOp(op);
    TF_DeleteStatus(status);
  }
};

void ExecuteOffThread(napi_env, void *data) {
  auto *run = static_cast<AsyncRun *>(data);
  int n = static_cast<int>(run->outputs.size());
  TFE_Execute(run->op, run->outputs.data(), &n, run->status);
}

napi_value Throw(napi_env env, const std::string &message) {
  napi_throw_error(env, "SPARKRING_OVERLAP", message.c_str());
  return nullptr;
}

napi_value RunFunctionAsyncJs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  bool is_array = false;
  if (argc == 3) napi_is_array(env, args[1], &is_array);
  size_t name_length = 0;
  int32_t num_outputs = -1;
  if (argc < 3 || !is_array || napi_get_value_string_utf8(env, args[0], nullptr, 0, &name_length) != napi_ok ||
      napi_get_value_int32(env, args[2], &num_outputs) != napi_ok || num_outputs < 0) {
    return Throw(env, "runFunctionAsync(name: string, inputIds: number[], numOutputs: number)");
  }
  void *data = nullptr;
  napi_get_instance_data(env, &data);
  std::string name(name_length, '\0');
  napi_get_value_string_utf8(env, args[0], &name[0], name_length + 1, &name_length);
  uint32_t count = 0;
  napi_get_array_length(env, args[1], &count);
  std::vector<int32_t> ids(count);
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    napi_get_element(env, args[1], i, &v);
    napi_get_value_int32(env, v, &ids[i]);
  }
  return static_cast<TFJSBackend *>(data)->RunFunctionAsync(env, name, ids, num_outputs);
}

}  // namespace

napi_value TFJSBackend::RunFunctionAsync(napi_env env, const std::string &name, const std::vector<int32_t> &input_ids,
                                         int num_outputs) {
  auto *run = new AsyncRun(this);
  run->op = TFE_NewOp(tfe_context_, name.c_str(), run->status);
  for (size_t i = 0; TF_GetCode(run->status) == TF_OK && i < input_ids.size(); i++) {
    auto found = tfe_handle_map_.find(input_ids[i]);
    if (found == tfe_handle_map_.end()) {
      delete run;
      return Throw(env, "runFunctionAsync: input tensor " + std::to_string(input_ids[i]) + " is not in TensorFlow");
    }
    // The caller keeps every input until the promise settles (compiled-step.ts disposes the cuts then).
    TFE_OpAddInput(run->op, found->second, run->status);
  }
  if (TF_GetCode(run->status) != TF_OK) {
    std::string message = TF_Message(run->status);
    delete run;
    return Throw(env, "runFunctionAsync: " + message);
  }
  run->outputs.assign(num_outputs, nullptr);
  napi_value promise, resource_name;
  napi_create_promise(env, &run->deferred, &promise);
  napi_create_string_utf8(env, "sparkring.runFunctionAsync", NAPI_AUTO_LENGTH, &resource_name);
  napi_create_async_work(
      env, nullptr, resource_name, ExecuteOffThread,
      [](napi_env env, napi_status, void *data) {
        auto *run = static_cast<AsyncRun *>(data);
        if (TF_GetCode(run->status) != TF_OK) {
          napi_value message, error;
          napi_create_string_utf8(env, TF_Message(run->status), NAPI_AUTO_LENGTH, &message);
          napi_create_error(env, nullptr, message, &error);
          napi_reject_deferred(env, run->deferred, error);
        } else {
          napi_value infos;
          napi_create_array_with_length(env, run->outputs.size(), &infos);
          for (size_t i = 0; i < run->outputs.size(); i++) {
            napi_set_element(env, infos, i, run->backend->GenerateOutputTensorInfo(env, run->outputs[i]));
          }
          napi_resolve_deferred(env, run->deferred, infos);
        }
        napi_delete_async_work(env, run->work);
        delete run;
      },
      run, &run->work);
  napi_queue_async_work(env, run->work);
  return promise;
}

napi_value TFJSBackend::SplitForOverlap(napi_env env, TF_Graph *graph, const std::vector<TF_Output> &inputs,
                                        const std::vector<TF_Output> &outs, size_t split_at, const std::string &name) {
  napi_value none;
  napi_get_null(env, &none);
  if (split_at == 0 || split_at >= outs.size()) return none;
  std::vector<TF_Output> first(outs.begin(), outs.begin() + split_at);
  std::vector<TF_Output> rest(outs.begin() + split_at, outs.end());
  OpSet placeholders;
  for (const TF_Output &in : inputs) placeholders.insert(in.oper);
  OpSet in_first = Ancestors(first);
  OpSet in_rest = Ancestors(rest);
  std::vector<TF_Operation *> body_first = Body(graph, in_first, placeholders);
  OpSet skip = placeholders;
  skip.insert(in_first.begin(), in_first.end());
  std::vector<TF_Operation *> body_rest = Body(graph, in_rest, skip);
  if (body_rest.empty()) return none;  // the first function computes it all

  // The tensors the second function reads from the first's ops; control edges cannot cross.
  std::vector<TF_Output> cuts;
  std::unordered_set<std::string> seen;
  auto cut = [&](TF_Output o) {
    if (placeholders.count(o.oper) || !in_first.count(o.oper)) return;
    if (seen.insert(std::string(TF_OperationName(o.oper)) + ":" + std::to_string(o.index)).second) cuts.push_back(o);
  };
  for (TF_Operation *op : body_rest) {
    int nc = TF_OperationNumControlInputs(op);
    std::vector<TF_Operation *> control(nc);
    if (nc > 0) TF_OperationGetControlInputs(op, control.data(), nc);
    for (TF_Operation *c : control) {
      if (in_first.count(c)) return none;
    }
    for (int i = 0; i < TF_OperationNumInputs(op); i++) cut(TF_OperationInput(TF_Input{op, i}));
  }
  // A second-function output the first computes anyway passes through it as an input.
  for (const TF_Output &r : rest) cut(r);
  std::vector<TF_Output> first_outputs = first;
  first_outputs.insert(first_outputs.end(), cuts.begin(), cuts.end());
  std::vector<TF_Output> rest_inputs = inputs;
  rest_inputs.insert(rest_inputs.end(), cuts.begin(), cuts.end());
  TF_AutoStatus status;
  if (!AddFunction(tfe_context_, graph, name + "_a", body_first, inputs, first_outputs, status.status) ||
      !AddFunction(tfe_context_, graph, name + "_b", body_rest, rest_inputs, rest, status.status)) {
    return Throw(env, std::string("endTrace: splitting the step for overlap: ") + TF_Message(status.status));
  }
  napi_value cut_count;
  napi_create_int32(env, static_cast<int32_t>(cuts.size()), &cut_count);
  return cut_count;
}

void RegisterOverlapExports(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"runFunctionAsync", nullptr, RunFunctionAsyncJs, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 1, props);
}

}  // namespace tfnodejs
