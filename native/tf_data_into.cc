// Tensors in and out of TensorFlow through memory the caller owns, for tfjs-node's binding:
//   tensorDataInto(id, target)      copies a tensor's values into a typed array
//   tensorFromData(shape, source)   -> id of a new tensor holding a copy of a typed array's values
// The binding's own tensorDataSync returns a new ArrayBuffer each call, and its createTensor keeps
// the JS array as the tensor's memory. An allreduce that moved every gradient through fresh arrays
// made megabytes of garbage a step, and V8 answered the external memory with full collections that
// stall the whole ring. Written by hand: the binding has no such calls.
// scripts/build-tf-binding.mjs adds them beside native/tf_trace.cc.
#include <node_api.h>

#include <cstring>
#include <string>
#include <vector>

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

napi_value FromDataJs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  bool is_array = false, is_typed = false;
  if (argc == 2) {
    napi_is_array(env, args[0], &is_array);
    napi_is_typedarray(env, args[1], &is_typed);
  }
  if (!is_array || !is_typed) {
    napi_throw_error(env, "SPARKRING_DATA_INTO", "tensorFromData(shape: number[], source: Float32Array | Int32Array)");
    return nullptr;
  }
  void *data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<TFJSBackend *>(data)->TensorFromData(env, args[0], args[1]);
}

}  // namespace

napi_value TFJSBackend::TensorFromData(napi_env env, napi_value shape_value, napi_value source) {
  uint32_t rank = 0;
  napi_get_array_length(env, shape_value, &rank);
  std::vector<int64_t> dims(rank);
  int64_t count = 1;
  for (uint32_t i = 0; i < rank; i++) {
    napi_value d;
    napi_get_element(env, shape_value, i, &d);
    napi_get_value_int64(env, d, &dims[i]);
    count *= dims[i];
  }
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void *src = nullptr;
  napi_value buffer;
  napi_get_typedarray_info(env, source, &type, &length, &src, &buffer, &offset);
  TF_DataType dtype = type == napi_float32_array ? TF_FLOAT : type == napi_int32_array ? TF_INT32 : TF_RESOURCE;
  if (dtype == TF_RESOURCE || static_cast<int64_t>(length) != count) {
    std::string message = "tensorFromData: the source must be a Float32Array or Int32Array of " +
                          std::to_string(count) + " values (the shape's), not " + std::to_string(length);
    napi_throw_error(env, "SPARKRING_DATA_INTO", message.c_str());
    return nullptr;
  }
  size_t bytes = length * 4;
  TF_Tensor *tensor = TF_AllocateTensor(dtype, dims.data(), static_cast<int>(rank), bytes);
  if (bytes > 0) std::memcpy(TF_TensorData(tensor), src, bytes);
  TF_AutoStatus status;
  TFE_TensorHandle *handle = TFE_NewTensorHandle(tensor, status.status);
  TF_DeleteTensor(tensor);
  // As the binding's createTensor does: float tensors go to the backend's device (a GPU's), int32
  // stays in host memory, where TensorFlow's GPU kernels expect it.
  if (TF_GetCode(status.status) == TF_OK && dtype != TF_INT32) {
    TFE_TensorHandle *on_device = TFE_TensorHandleCopyToDevice(handle, tfe_context_, device_name.c_str(), status.status);
    TFE_DeleteTensorHandle(handle);
    handle = on_device;
  }
  if (TF_GetCode(status.status) != TF_OK) {
    napi_throw_error(env, "SPARKRING_DATA_INTO", TF_Message(status.status));
    return nullptr;
  }
  napi_value id;
  napi_create_int32(env, InsertHandle(handle), &id);
  return id;
}

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
      {"tensorFromData", nullptr, FromDataJs, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 2, props);
}

}  // namespace tfnodejs
