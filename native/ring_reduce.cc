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
 *
 * Gradients on the wire in 16 bits (--wire-precision, src/collective/half-precision.ts, whose
 * JavaScript kernels give the same bits): format 0 is IEEE fp16, 1 is bfloat16; both round to
 * nearest, ties to even (fp16 through F16C and bf16 through AVX2 where the CPU has them). Wire
 * elements are read and written as bytes (a frame's payload may sit at any offset).
 *   encodeHalf(dst: Uint8Array, src: Float32Array, at, format, residual?): dst's 2-byte elements
 *       from src[at..]; residual[at + i] gains what rounding took off src[at + i] (error feedback)
 *   reduceHalf(dst: Float32Array, at, src: Uint8Array, op, n, format, round, residual?):
 *       dst[at + i] = op(dst[at + i], src[i]) as reduce() does, op 4 taking src[i] as it is; with
 *       round, the result is stored rounded to the format (every rank then holds what the wire
 *       carries) and residual[at + i] gains what rounding took off (n times that for the mean)
 */
#include <node.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

/* ---- 16-bit wire formats ------------------------------------------------------------------ */

enum Format { kFp16 = 0, kBf16 = 1 };
constexpr int kSet = 4;

inline uint32_t BitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float FloatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/* IEEE fp16, round to nearest even, as F16C's vcvtps2ph does (NaNs stay quiet NaNs). */
inline uint16_t Fp16Of(float f) {
  const uint32_t u = BitsOf(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t exp = (u >> 23) & 0xffu;
  uint32_t mant = u & 0x7fffffu;
  if (exp == 0xffu) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u));
  const int e = static_cast<int>(exp) - 112;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    const int shift = 14 - e;
    uint32_t h = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1u))) h++;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
  return static_cast<uint16_t>(sign | h);
}

inline float FloatOfFp16(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return FloatOf(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return FloatOf(sign | ((exp + 112u) << 23) | (mant << 13));
  const float magnitude = static_cast<float>(mant) * (1.0f / 16777216.0f);  // mant * 2^-24, exact
  return sign ? -magnitude : magnitude;
}

inline uint16_t Bf16Of(float f) {
  const uint32_t u = BitsOf(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float FloatOfBf16(uint16_t h) { return FloatOf(static_cast<uint32_t>(h) << 16); }

template <int F>
inline uint16_t HalfOf(float f) {
  return F == kFp16 ? Fp16Of(f) : Bf16Of(f);
}

template <int F>
inline float FloatOfHalf(uint16_t h) {
  return F == kFp16 ? FloatOfFp16(h) : FloatOfBf16(h);
}

inline uint16_t Load16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

inline void Store16(uint8_t* p, uint16_t h) { std::memcpy(p, &h, 2); }

/* residual (may be null): what rounding took off each element, added to it (error feedback). */
template <int F>
void EncodeScalar(uint8_t* __restrict dst, const float* __restrict src, float* __restrict residual, size_t len) {
  for (size_t i = 0; i < len; i++) {
    const uint16_t h = HalfOf<F>(src[i]);
    Store16(dst + 2 * i, h);
    if (residual) residual[i] += src[i] - FloatOfHalf<F>(h);
  }
}

inline float Combined(float a, float b, int op, float divisor) {
  switch (op) {
    case kSum:
      return a + b;
    case kMax:
      return (b > a || b != b) ? b : a;
    case kMin:
      return (b < a || b != b) ? b : a;
    case kMeanLast:
      return (a + b) / divisor;
    default:
      return b;
  }
}

/* With round and a residual, the residual gains what rounding took off, times `scale`. */
template <int F>
void ReduceScalar(float* __restrict d, const uint8_t* __restrict s, float* __restrict residual, size_t len, int op, int n,
                  bool round, float scale) {
  const float divisor = static_cast<float>(n);
  for (size_t i = 0; i < len; i++) {
    const float v = Combined(d[i], FloatOfHalf<F>(Load16(s + 2 * i)), op, divisor);
    if (!round) {
      d[i] = v;
      continue;
    }
    const float q = FloatOfHalf<F>(HalfOf<F>(v));
    if (residual) residual[i] += scale * (v - q);
    d[i] = q;
  }
}

#if defined(__x86_64__)
/* fp16 through F16C, 8 elements at a time (the scalar loops do the rest, and CPUs without it). */
__attribute__((target("avx,f16c"))) void EncodeFp16F16c(uint8_t* __restrict dst, const float* __restrict src,
                                                          float* __restrict residual, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i), h);
    if (residual) {
      const __m256 r = _mm256_add_ps(_mm256_loadu_ps(residual + i), _mm256_sub_ps(v, _mm256_cvtph_ps(h)));
      _mm256_storeu_ps(residual + i, r);
    }
  }
  EncodeScalar<kFp16>(dst + 2 * i, src + i, residual ? residual + i : nullptr, len - i);
}

__attribute__((target("avx,f16c"))) void ReduceFp16F16c(float* __restrict d, const uint8_t* __restrict s,
                                                          float* __restrict residual, size_t len, int op, int n, bool round,
                                                          float scale) {
  size_t i = 0;
  if (op == kSum || op == kMeanLast || op == kSet) {
    const __m256 divisor = _mm256_set1_ps(static_cast<float>(n));
    const __m256 scales = _mm256_set1_ps(scale);
    for (; i + 8 <= len; i += 8) {
      const __m256 b = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i)));
      __m256 v = b;
      if (op != kSet) v = _mm256_add_ps(_mm256_loadu_ps(d + i), b);
      if (op == kMeanLast) v = _mm256_div_ps(v, divisor);
      if (round) {
        const __m256 q = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        if (residual) {
          const __m256 r = _mm256_add_ps(_mm256_loadu_ps(residual + i), _mm256_mul_ps(scales, _mm256_sub_ps(v, q)));
          _mm256_storeu_ps(residual + i, r);
        }
        v = q;
      }
      _mm256_storeu_ps(d + i, v);
    }
  }
  ReduceScalar<kFp16>(d + i, s + 2 * i, residual ? residual + i : nullptr, len - i, op, n, round, scale);
}

/* bfloat16 through AVX2's integer lanes, 8 elements at a time: the scalar loop's rounding and NaNs. */
__attribute__((target("avx2"))) inline __m128i Bf16OfAvx2(__m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i magnitude = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7f800000));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256i h = _mm256_blendv_epi8(rounded, quiet, nan);
  // 8 x 32 bits (each under 0x10000) to 8 x 16 bits: pack within lanes, then put the halves together.
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(h, h), 0xD8);
  return _mm256_castsi256_si128(packed);
}

__attribute__((target("avx2"))) inline __m256 FloatsOfBf16Avx2(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

__attribute__((target("avx2"))) void EncodeBf16Avx2(uint8_t* __restrict dst, const float* __restrict src,
                                                      float* __restrict residual, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    const __m128i h = Bf16OfAvx2(v);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i), h);
    if (residual) {
      const __m256 r = _mm256_add_ps(_mm256_loadu_ps(residual + i), _mm256_sub_ps(v, FloatsOfBf16Avx2(h)));
      _mm256_storeu_ps(residual + i, r);
    }
  }
  EncodeScalar<kBf16>(dst + 2 * i, src + i, residual ? residual + i : nullptr, len - i);
}

__attribute__((target("avx2"))) void ReduceBf16Avx2(float* __restrict d, const uint8_t* __restrict s, float* __restrict residual,
                                                      size_t len, int op, int n, bool round, float scale) {
  size_t i = 0;
  if (op == kSum || op == kMeanLast || op == kSet) {
    const __m256 divisor = _mm256_set1_ps(static_cast<float>(n));
    const __m256 scales = _mm256_set1_ps(scale);
    for (; i + 8 <= len; i += 8) {
      const __m256 b = FloatsOfBf16Avx2(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i)));
      __m256 v = b;
      if (op != kSet) v = _mm256_add_ps(_mm256_loadu_ps(d + i), b);
      if (op == kMeanLast) v = _mm256_div_ps(v, divisor);
      if (round) {
        const __m256 q = FloatsOfBf16Avx2(Bf16OfAvx2(v));
        if (residual) {
          const __m256 r = _mm256_add_ps(_mm256_loadu_ps(residual + i), _mm256_mul_ps(scales, _mm256_sub_ps(v, q)));
          _mm256_storeu_ps(residual + i, r);
        }
        v = q;
      }
      _mm256_storeu_ps(d + i, v);
    }
  }
  ReduceScalar<kBf16>(d + i, s + 2 * i, residual ? residual + i : nullptr, len - i, op, n, round, scale);
}

const bool kHasF16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
const bool kHasAvx2 = __builtin_cpu_supports("avx2");
#else
const bool kHasF16c = false;
const bool kHasAvx2 = false;
#endif

void ThrowRange(Isolate* isolate, const char* what) {
  isolate->ThrowException(Exception::RangeError(String::NewFromUtf8(isolate, what).ToLocalChecked()));
}

/* The optional Float32Array at args[i] (undefined: none), which must hold `need` elements. */
bool OptionalFloats(const FunctionCallbackInfo<Value>& args, int i, size_t need, float** out) {
  *out = nullptr;
  if (args.Length() <= i || args[i]->IsUndefined()) return true;
  if (!args[i]->IsFloat32Array()) return false;
  Local<TypedArray> a = args[i].As<TypedArray>();
  if (a->Length() < need) return false;
  *out = static_cast<float*>(DataOf(a));
  return true;
}

void EncodeHalf(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 4 || !args[0]->IsUint8Array() || !args[1]->IsFloat32Array() || !args[2]->IsUint32() ||
      !args[3]->IsUint32()) {
    ThrowRange(isolate, "encodeHalf(dst: Uint8Array, src: Float32Array, at, format, residual?: Float32Array)");
    return;
  }
  Local<TypedArray> dst = args[0].As<TypedArray>();
  Local<TypedArray> src = args[1].As<TypedArray>();
  const size_t at = args[2].As<v8::Uint32>()->Value();
  const int format = static_cast<int>(args[3].As<v8::Uint32>()->Value());
  const size_t len = dst->ByteLength() / 2;
  float* residual;
  if (dst->ByteLength() % 2 != 0 || at + len > src->Length() || format > kBf16 ||
      !OptionalFloats(args, 4, src->Length(), &residual)) {
    ThrowRange(isolate, "encodeHalf: dst holds 2-byte elements of src from at; format 0 (fp16) or 1 (bf16); residual as long as src");
    return;
  }
  if (len == 0) return;
  uint8_t* d = static_cast<uint8_t*>(DataOf(dst));
  const float* from = static_cast<const float*>(DataOf(src)) + at;
  float* r = residual ? residual + at : nullptr;
#if defined(__x86_64__)
  if (format == kFp16 && kHasF16c) return EncodeFp16F16c(d, from, r, len);
  if (format == kBf16 && kHasAvx2) return EncodeBf16Avx2(d, from, r, len);
#endif
  if (format == kFp16) EncodeScalar<kFp16>(d, from, r, len);
  else EncodeScalar<kBf16>(d, from, r, len);
}

void ReduceHalf(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 7 || !args[0]->IsFloat32Array() || !args[1]->IsUint32() || !args[2]->IsUint8Array() ||
      !args[3]->IsUint32() || !args[4]->IsUint32() || !args[5]->IsUint32() || !args[6]->IsBoolean()) {
    ThrowRange(isolate, "reduceHalf(dst: Float32Array, at, src: Uint8Array, op, n, format, round, residual?: Float32Array)");
    return;
  }
  Local<TypedArray> dst = args[0].As<TypedArray>();
  Local<TypedArray> src = args[2].As<TypedArray>();
  const size_t at = args[1].As<v8::Uint32>()->Value();
  const int op = static_cast<int>(args[3].As<v8::Uint32>()->Value());
  const int n = static_cast<int>(args[4].As<v8::Uint32>()->Value());
  const int format = static_cast<int>(args[5].As<v8::Uint32>()->Value());
  const bool round = args[6]->IsTrue();
  const size_t len = src->ByteLength() / 2;
  float* residual;
  if (src->ByteLength() % 2 != 0 || at + len > dst->Length() || op > kSet || n < 1 || format > kBf16 ||
      !OptionalFloats(args, 7, dst->Length(), &residual)) {
    ThrowRange(isolate,
               "reduceHalf: src holds 2-byte elements within dst from at; op 0-4, n >= 1, format 0 or 1; residual as long as dst");
    return;
  }
  if (len == 0) return;
  float* d = static_cast<float*>(DataOf(dst)) + at;
  const uint8_t* from = static_cast<const uint8_t*>(DataOf(src));
  float* r = residual ? residual + at : nullptr;
  // The mean's rounding, fed back as a contribution to the sum: n times what it took off.
  const float scale = op == kMeanLast ? static_cast<float>(n) : 1.0f;
#if defined(__x86_64__)
  if (format == kFp16 && kHasF16c) return ReduceFp16F16c(d, from, r, len, op, n, round, scale);
  if (format == kBf16 && kHasAvx2) return ReduceBf16Avx2(d, from, r, len, op, n, round, scale);
#endif
  if (format == kFp16) ReduceScalar<kFp16>(d, from, r, len, op, n, round, scale);
  else ReduceScalar<kBf16>(d, from, r, len, op, n, round, scale);
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "reduce"),
            FunctionTemplate::New(isolate, Reduce)->GetFunction(context).ToLocalChecked())
      .Check();
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "encodeHalf"),
            FunctionTemplate::New(isolate, EncodeHalf)->GetFunction(context).ToLocalChecked())
      .Check();
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "reduceHalf"),
            FunctionTemplate::New(isolate, ReduceHalf)->GetFunction(context).ToLocalChecked())
      .Check();
}
