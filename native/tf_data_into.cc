// tensorDataInto(id, target): copies a tensor's values into a typed array the caller owns, for
// tfjs-node's binding. Its own tensorDataSync returns a new ArrayBuffer each call; an allreduce
// that reads every gradient every step into fresh buffers makes megabytes of garbage a step, and
// V8 answers the external memory with full collections that stall the whole ring. Written by hand:
// the binding has no such call. scripts/build-tf-binding.mjs adds it beside native/tf_trace.cc.
#include <node_api.h>

#include <cstring>
#include <string>

#include "tensorflow/c/c_api.h"
#include "tensorflow/c/eager/c_api.h"
#include "tf_auto_status.h"
#include "tfjs_backend.h"

namespace tfnodejs {

namespace {

napi_value DataIntoJs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  int32_t id = -1;
  bool is_typed = false;
  if (argc == 2) napi_is_typedarray(env, args[1], &is_typed);
  if (argc < 2 || napi_get_value_int32(env, args[0], &id) != napi_ok || !is_typed) {
    napi_throw_error(env, "SPARKRING_DATA_INTO", "tensorDataInto(tensorId: number, target: TypedArray)");
    return nullptr;
  }
  void *data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<TFJSBackend *>(data)->TensorDataInto(env, id, args[1]);
}

}  // namespace

napi_value TFJSBackend::TensorDataInto(napi_env env, int32_t id, napi_value target) {
  auto found = tfe_handle_map_.find(id);
  if (found == tfe_handle_map_.end()) {
    napi_throw_error(env, "SPARKRING_DATA_INTO", ("tensorDataInto: no tensor " + std::to_string(id)).c_str());
    return nullptr;
  }
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void *dest = nullptr;
  napi_value buffer;
  napi_get_typedarray_info(env, target, &type, &length, &dest, &buffer, &offset);
  size_t element = type == napi_float64_array ? 8 : (type == napi_float32_array || type == napi_int32_array) ? 4 : 0;
  TF_AutoStatus status;
  TF_Tensor *tensor = TFE_TensorHandleResolve(found->second, status.status);
  if (TF_GetCode(status.status) != TF_OK) {
    napi_throw_error(env, "SPARKRING_DATA_INTO", TF_Message(status.status));
    return nullptr;
  }
  size_t bytes = TF_TensorByteSize(tensor);
  if (element == 0 || bytes != length * element) {
    TF_DeleteTensor(tensor);
    std::string message = "tensorDataInto: tensor " + std::to_string(id) + " has " + std::to_string(bytes) +
                          " bytes; the target array has " + std::to_string(length * element);
    napi_throw_error(env, "SPARKRING_DATA_INTO", message.c_str());
    return nullptr;
  }
  std::memcpy(dest, TF_TensorData(tensor), bytes);
  TF_DeleteTensor(tensor);
  return nullptr;
}

void RegisterDataIntoExports(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"tensorDataInto", nullptr, DataIntoJs, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 1, props);
}

}  // namespace tfnodejs
