/*
 * ring_reduce: the ring's element-wise reductions (src/collective/reduce.ts) as compiled loops the
 * compiler vectorizes. V8's loops over typed arrays ran at 1 to 3 ns an element, and a 2-rank
 * allreduce of 4.8 MB reduces 1.2 M elements on its critical path; a memcpy of the same bytes
 * takes a tenth of that. No library does this for Node's typed arrays, so it is written by hand.
 * Built at install by scripts/build-native.mjs beside partition_map; reduce.ts keeps its own loops
 * for when it is absent.
 *
 * reduce(dst, at, src, op, n): dst[at + i] = op(dst[at + i], src[i]) for every i of src.
 *   dst and src: typed arrays of one element type (Float32Array, Float64Array, Int32Array)
 *   op: 0 sum, 1 max, 2 min (NaN wins both, as in reduce.ts), 3 the mean's last contribution:
 *       the sum rounded to the element type, then divided by n
 */
#include <node.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

using v8::Exception;
using v8::FunctionCallbackInfo;
using v8::FunctionTemplate;
using v8::Isolate;
using v8::Local;
using v8::String;
using v8::TypedArray;
using v8::Value;

enum Op { kSum = 0, kMax = 1, kMin = 2, kMeanLast = 3 };

template <typename T>
void Combine(T* __restrict d, const T* __restrict s, size_t len, int op, int n) {
  switch (op) {
    case kSum:
      for (size_t i = 0; i < len; i++) d[i] = d[i] + s[i];
      break;
    case kMax:
      for (size_t i = 0; i < len; i++) d[i] = (s[i] > d[i] || s[i] != s[i]) ? s[i] : d[i];
      break;
    case kMin:
      for (size_t i = 0; i < len; i++) d[i] = (s[i] < d[i] || s[i] != s[i]) ? s[i] : d[i];
      break;
    case kMeanLast: {
      const T divisor = static_cast<T>(n);
      for (size_t i = 0; i < len; i++) {
        const T sum = d[i] + s[i];
        d[i] = sum / divisor;
      }
      break;
    }
  }
}

/* Int32 sums wrap like C's unsigned arithmetic (signed overflow would be undefined). */
void CombineInt32(int32_t* __restrict d, const int32_t* __restrict s, size_t len, int op) {
  switch (op) {
    case kSum:
      for (size_t i = 0; i < len; i++) d[i] = static_cast<int32_t>(static_cast<uint32_t>(d[i]) + static_cast<uint32_t>(s[i]));
      break;
    case kMax:
      for (size_t i = 0; i < len; i++) d[i] = s[i] > d[i] ? s[i] : d[i];
      break;
    case kMin:
      for (size_t i = 0; i < len; i++) d[i] = s[i] < d[i] ? s[i] : d[i];
      break;
  }
}

void* DataOf(Local<TypedArray> a) {
  return static_cast<char*>(a->Buffer()->GetBackingStore()->Data()) + a->ByteOffset();
}

void Reduce(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() != 5 || !args[0]->IsTypedArray() || !args[1]->IsUint32() || !args[2]->IsTypedArray() ||
      !args[3]->IsUint32() || !args[4]->IsUint32()) {
    isolate->ThrowException(Exception::TypeError(String::NewFromUtf8Literal(isolate, "reduce(dst, at, src, op, n)")));
    return;
  }
  Local<TypedArray> dst = args[0].As<TypedArray>();
  Local<TypedArray> src = args[2].As<TypedArray>();
  size_t at = args[1].As<v8::Uint32>()->Value();
  int op = static_cast<int>(args[3].As<v8::Uint32>()->Value());
  int n = static_cast<int>(args[4].As<v8::Uint32>()->Value());
  size_t len = src->Length();
  bool same = (dst->IsFloat32Array() && src->IsFloat32Array()) || (dst->IsFloat64Array() && src->IsFloat64Array()) ||
              (dst->IsInt32Array() && src->IsInt32Array());
  if (!same || at + len > dst->Length() || op > kMeanLast || (op == kMeanLast && (n < 1 || dst->IsInt32Array()))) {
    isolate->ThrowException(Exception::RangeError(String::NewFromUtf8Literal(
        isolate, "reduce: dst and src must be Float32, Float64 or Int32 arrays of one type, src within dst from at")));
    return;
  }
  if (len == 0) return;
  if (dst->IsFloat32Array()) {
    Combine(static_cast<float*>(DataOf(dst)) + at, static_cast<const float*>(DataOf(src)), len, op, n);
  } else if (dst->IsFloat64Array()) {
    Combine(static_cast<double*>(DataOf(dst)) + at, static_cast<const double*>(DataOf(src)), len, op, n);
  } else {
    CombineInt32(static_cast<int32_t*>(DataOf(dst)) + at, static_cast<const int32_t*>(DataOf(src)), len, op);
  }
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "reduce"),
            FunctionTemplate::New(isolate, Reduce)->GetFunction(context).ToLocalChecked())
      .Check();
}
