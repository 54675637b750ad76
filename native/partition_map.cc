/*
 * partition_map: maps a range of a file (the partition a Spark task wrote to shared memory) into
 * a Uint8Array without copying it; and maps the ring's shared-memory regions read-write
 * (createShared, openShared: src/collective/shared-memory.ts). Node has no mmap of its own, and the npm mmap bindings are
 * NAN-based and unmaintained, so this small addon is written by hand. Built at install time by
 * scripts/build-native.mjs for the Node that builds it; sparkring reads the file instead when it
 * is absent or was built for another Node.
 *
 * Written on V8's API rather than N-API: N-API wraps outside memory only as a Node Buffer, whose
 * prototype it swaps in after making a plain Uint8Array. That swap makes V8 throw away the
 * optimized code of everything that reads Uint8Arrays, Arrow's reader included, just as the
 * worker starts on its partition (bench handoff).
 */
#include <fcntl.h>
#include <node.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

namespace {

using v8::ArrayBuffer;
using v8::BackingStore;
using v8::Context;
using v8::Exception;
using v8::FunctionCallbackInfo;
using v8::FunctionTemplate;
using v8::Global;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::String;
using v8::Uint8Array;
using v8::Value;
using v8::WeakCallbackInfo;
using v8::WeakCallbackType;

void Throw(Isolate* isolate, Local<Value> (*make)(Local<String>), const char* code, const std::string& message) {
  Local<Context> context = isolate->GetCurrentContext();
  Local<Value> error = make(String::NewFromUtf8(isolate, message.c_str()).ToLocalChecked());
  error.As<Object>()
      ->Set(context, String::NewFromUtf8Literal(isolate, "code"), String::NewFromUtf8(isolate, code).ToLocalChecked())
      .Check();
  isolate->ThrowException(error);
}

/* The deleter may run on any thread (V8 frees backing stores in the background): munmap only. */
void Unmap(void* data, size_t length, void*) { munmap(data, length); }

/*
 * V8 counts an ArrayBuffer's bytes as external memory and collects garbage when that grows,
 * which for a partition mapped in pieces means several full collections while it arrives. The
 * mapping is file-backed and stays until the data is dropped, so no collection can free it: its
 * bytes are taken back out of the count when it is made, and put back once its ArrayBuffer is
 * collected (V8 then takes them out again as it frees the backing store).
 */
struct Uncounted {
  Global<ArrayBuffer> buffer;
  int64_t bytes;
};

void CountAgain(const WeakCallbackInfo<Uncounted>& info) {
  std::unique_ptr<Uncounted> uncounted(info.GetParameter());
  info.GetIsolate()->AdjustAmountOfExternalAllocatedMemory(uncounted->bytes);
}

void Collected(const WeakCallbackInfo<Uncounted>& info) {
  info.GetParameter()->buffer.Reset();
  info.SetSecondPassCallback(CountAgain);  // V8's API may be called only in the second pass
}

/* A mapping's bytes as a Uint8Array over its own ArrayBuffer, uncounted like a partition. */
Local<Uint8Array> Wrap(Isolate* isolate, void* base, size_t length) {
  std::unique_ptr<BackingStore> store = ArrayBuffer::NewBackingStore(base, length, Unmap, nullptr);
  Local<ArrayBuffer> buffer = ArrayBuffer::New(isolate, std::move(store));
  auto* uncounted = new Uncounted{Global<ArrayBuffer>(isolate, buffer), static_cast<int64_t>(length)};
  uncounted->buffer.SetWeak(uncounted, Collected, WeakCallbackType::kParameter);
  isolate->AdjustAmountOfExternalAllocatedMemory(-uncounted->bytes);
  return Uint8Array::New(buffer, 0, length);
}

/* mapRange(path: string, offset: number, length: number): Uint8Array */
void MapRange(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() != 3 || !args[0]->IsString() || !args[1]->IsNumber() || !args[2]->IsNumber() ||
      args[1].As<v8::Number>()->Value() < 0 || !(args[2].As<v8::Number>()->Value() > 0)) {
    Throw(isolate, Exception::TypeError, "EINVAL", "mapRange(path, offset >= 0, length > 0)");
    return;
  }
  String::Utf8Value path_value(isolate, args[0]);
  std::string path(*path_value, path_value.length());
  size_t offset = static_cast<size_t>(args[1].As<v8::Number>()->Value());
  size_t length = static_cast<size_t>(args[2].As<v8::Number>()->Value());
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t start = offset - offset % page;
  size_t span = length + (offset - start);

  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    Throw(isolate, Exception::Error, "EOPEN", "cannot open " + path + ": " + std::strerror(errno));
    return;
  }
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0 || static_cast<size_t>(size) < offset + length) {
    close(fd);
    Throw(isolate, Exception::RangeError, "ERANGE",
          path + " holds " + std::to_string(static_cast<long long>(size)) + " bytes, fewer than the " +
              std::to_string(offset + length) + " asked for");
    return;
  }
  /*
   * No MAP_POPULATE: Arrow's reader touches only each message's header, so the data's pages are
   * mapped when training first reads them, not all at once while Spark still needs the cores.
   */
  void* base = mmap(nullptr, span, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
  int err = errno;
  close(fd);
  if (base == MAP_FAILED) {
    Throw(isolate, Exception::Error, "EMMAP", "cannot map " + path + ": " + std::strerror(err));
    return;
  }
  Local<Uint8Array> whole = Wrap(isolate, base, span);
  args.GetReturnValue().Set(Uint8Array::New(whole->Buffer(), offset - start, length));
}

/*
 * createShared(path, length) makes a new file of `length` zero bytes (mode 0600, never an existing
 * one) and maps it read-write; openShared(path, length) maps an existing one. Both throw with
 * code EOPEN (errno in the message) when the file cannot be had, ERANGE when it is shorter.
 */
void MapShared(const FunctionCallbackInfo<Value>& args, bool create) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() != 2 || !args[0]->IsString() || !args[1]->IsNumber() || !(args[1].As<v8::Number>()->Value() > 0)) {
    Throw(isolate, Exception::TypeError, "EINVAL", create ? "createShared(path, length > 0)" : "openShared(path, length > 0)");
    return;
  }
  String::Utf8Value path_value(isolate, args[0]);
  std::string path(*path_value, path_value.length());
  size_t length = static_cast<size_t>(args[1].As<v8::Number>()->Value());
  int fd = create ? open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
                  : open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    Throw(isolate, Exception::Error, "EOPEN", "cannot open " + path + ": " + std::strerror(errno));
    return;
  }
  /*
   * Allocated now, not sized sparse: a write to a page that a full tmpfs cannot back raises SIGBUS,
   * so a /dev/shm without room must fail here (and the link stay on TCP), not in mid-allreduce.
   */
  int err = create ? posix_fallocate(fd, 0, static_cast<off_t>(length)) : 0;
  if (err != 0) {
    close(fd);
    unlink(path.c_str());
    Throw(isolate, Exception::Error, "EOPEN", "cannot allocate " + std::to_string(length) + " bytes for " + path + ": " + std::strerror(err));
    return;
  }
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0 || static_cast<size_t>(size) < length) {
    close(fd);
    Throw(isolate, Exception::RangeError, "ERANGE", path + " is shorter than " + std::to_string(length) + " bytes");
    return;
  }
  void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  err = errno;
  close(fd);
  if (base == MAP_FAILED) {
    if (create) unlink(path.c_str());
    Throw(isolate, Exception::Error, "EMMAP", "cannot map " + path + ": " + std::strerror(err));
    return;
  }
  args.GetReturnValue().Set(Wrap(isolate, base, length));
}

void CreateShared(const FunctionCallbackInfo<Value>& args) { MapShared(args, true); }
void OpenShared(const FunctionCallbackInfo<Value>& args) { MapShared(args, false); }

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "mapRange"),
            FunctionTemplate::New(isolate, MapRange)->GetFunction(context).ToLocalChecked())
      .Check();
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "createShared"),
            FunctionTemplate::New(isolate, CreateShared)->GetFunction(context).ToLocalChecked())
      .Check();
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "openShared"),
            FunctionTemplate::New(isolate, OpenShared)->GetFunction(context).ToLocalChecked())
      .Check();
}
