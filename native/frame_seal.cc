/*
 * frame_seal: AES-256-GCM for the ring's sealed frames (src/collective/link-seal.ts), in place and
 * without a buffer per call. Node's own Cipheriv allocates each output and ran at about 1.5 GB/s
 * here, where the OpenSSL under it seals at 4 GB/s; the ring's receiver also wants a frame opened
 * where its bytes already lie (the array the allreduce fills). No library offers that to Node, so
 * it is written by hand, over the OpenSSL that Node itself exports to addons.
 *
 * seal(key, nonce, aad, src, dst, tag): dst = AES-256-GCM(key, nonce, aad) of src (dst may be src),
 *   its 16-byte tag into tag.
 * open(key, nonce, aad, buf, tag): decrypts buf in place; false (buf then garbage) when the tag
 *   does not match.
 * key: 32 bytes, nonce: 12 bytes, every argument a Uint8Array.
 */
#include <node.h>
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

namespace {

using v8::Boolean;
using v8::FunctionCallbackInfo;
using v8::FunctionTemplate;
using v8::Isolate;
using v8::Local;
using v8::String;
using v8::Uint8Array;
using v8::Value;

struct Bytes {
  uint8_t* data = nullptr;
  size_t length = 0;
};

bool Arg(const FunctionCallbackInfo<Value>& args, int i, Bytes* out) {
  if (!args[i]->IsUint8Array()) return false;
  Local<Uint8Array> a = args[i].As<Uint8Array>();
  out->data = static_cast<uint8_t*>(a->Buffer()->Data()) + a->ByteOffset();
  out->length = a->ByteLength();
  return true;
}

void Throw(Isolate* isolate, const char* message) {
  isolate->ThrowException(v8::Exception::TypeError(String::NewFromUtf8(isolate, message).ToLocalChecked()));
}

/* One context per direction of use, kept for the process: only the key and nonce change per frame. */
EVP_CIPHER_CTX* Context(bool encrypt) {
  static thread_local EVP_CIPHER_CTX* contexts[2] = {nullptr, nullptr};
  EVP_CIPHER_CTX*& ctx = contexts[encrypt ? 1 : 0];
  if (ctx == nullptr) {
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == nullptr) return nullptr;
    int ok = encrypt ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr)
                     : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
    if (ok != 1) {
      EVP_CIPHER_CTX_free(ctx);
      ctx = nullptr;
    }
  }
  return ctx;
}

/* EVP takes int lengths: a frame is at most 2^31 - 1 bytes (the ring's frames are far smaller). */
bool FitsInt(size_t n) { return n <= 0x7fffffff; }

void Seal(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Bytes key, nonce, aad, src, dst, tag;
  if (!Arg(args, 0, &key) || !Arg(args, 1, &nonce) || !Arg(args, 2, &aad) || !Arg(args, 3, &src) || !Arg(args, 4, &dst) ||
      !Arg(args, 5, &tag) || key.length != 32 || nonce.length != 12 || tag.length != 16 || dst.length < src.length ||
      !FitsInt(src.length) || !FitsInt(aad.length)) {
    Throw(isolate, "seal(key[32], nonce[12], aad, src, dst, tag[16]) takes Uint8Arrays, dst at least as long as src");
    return;
  }
  EVP_CIPHER_CTX* ctx = Context(true);
  int n = 0;
  bool ok = ctx != nullptr && EVP_EncryptInit_ex(ctx, nullptr, nullptr, key.data, nonce.data) == 1 &&
            EVP_EncryptUpdate(ctx, nullptr, &n, aad.data, static_cast<int>(aad.length)) == 1 &&
            (src.length == 0 || EVP_EncryptUpdate(ctx, dst.data, &n, src.data, static_cast<int>(src.length)) == 1) &&
            EVP_EncryptFinal_ex(ctx, dst.data + src.length, &n) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag.data) == 1;
  if (!ok) Throw(isolate, "AES-256-GCM sealing failed in OpenSSL");
}

void Open(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Bytes key, nonce, aad, buf, tag;
  if (!Arg(args, 0, &key) || !Arg(args, 1, &nonce) || !Arg(args, 2, &aad) || !Arg(args, 3, &buf) || !Arg(args, 4, &tag) ||
      key.length != 32 || nonce.length != 12 || tag.length != 16 || !FitsInt(buf.length) || !FitsInt(aad.length)) {
    Throw(isolate, "open(key[32], nonce[12], aad, buf, tag[16]) takes Uint8Arrays");
    return;
  }
  EVP_CIPHER_CTX* ctx = Context(false);
  int n = 0;
  uint8_t none[16];
  bool ok = ctx != nullptr && EVP_DecryptInit_ex(ctx, nullptr, nullptr, key.data, nonce.data) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &n, aad.data, static_cast<int>(aad.length)) == 1 &&
            (buf.length == 0 || EVP_DecryptUpdate(ctx, buf.data, &n, buf.data, static_cast<int>(buf.length)) == 1) &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag.data) == 1 &&
            EVP_DecryptFinal_ex(ctx, none, &n) == 1;
  args.GetReturnValue().Set(Boolean::New(isolate, ok));
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  exports->Set(context, String::NewFromUtf8(isolate, "seal").ToLocalChecked(),
               FunctionTemplate::New(isolate, Seal)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "open").ToLocalChecked(),
               FunctionTemplate::New(isolate, Open)->GetFunction(context).ToLocalChecked()).Check();
}
