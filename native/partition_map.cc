/*
 * partition_map: maps a range of a file (the partition a Spark task wrote to shared memory) into
 * a Uint8Array without copying it; and makes, hands over and maps the ring's shared-memory regions
 * (src/collective/shared-memory.ts). Node has no mmap of its own, and the npm mmap bindings are
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
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <utility>

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

/* A whole number of bytes from 0 (or 1) to 2^40, far past anything mapped here; a double cast
 * to size_t unchecked would wrap a negative or NaN into a huge length. */
bool Bytes(const FunctionCallbackInfo<Value>& args, int i, size_t* out, bool zero_ok = false) {
  if (!args[i]->IsNumber()) return false;
  double v = args[i].As<v8::Number>()->Value();
  if (!(v >= (zero_ok ? 0.0 : 1.0)) || v > 1099511627776.0 || v != static_cast<double>(static_cast<uint64_t>(v))) return false;
  *out = static_cast<size_t>(v);
  return true;
}

/* mapRange(path: string, offset: number, length: number): Uint8Array */
void MapRange(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  size_t offset = 0, length = 0;
  if (args.Length() != 3 || !args[0]->IsString() || !Bytes(args, 1, &offset, true) || !Bytes(args, 2, &length)) {
    Throw(isolate, Exception::TypeError, "EINVAL", "mapRange(path, offset >= 0, length > 0), whole numbers of bytes");
    return;
  }
  String::Utf8Value path_value(isolate, args[0]);
  std::string path(*path_value, path_value.length());
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
 * The ring's shared regions have no name in any directory: the sender makes an anonymous memfd
 * and hands its descriptor to the receiver over a Unix socket (SCM_RIGHTS), after the receiver
 * proved the offer's nonce; the socket has an abstract name, which no file system holds.
 *
 * createRegion(length) -> { bytes, fd }: a memfd of `length` bytes, allocated (a full tmpfs then
 *   fails here, not with SIGBUS mid-allreduce) and mapped read-write. The caller closes `fd` once
 *   sent (closeFd).
 * peerUid(socketFd) -> number: the uid of the process at the other end (SO_PEERCRED).
 * sendFd(socketFd, fd): sends `fd` with one byte.
 * connectRegion(name, proof) -> socketFd: connects to the abstract socket `name`, checks its owner
 *   is this uid, sends `proof`; the socket is then non-blocking.
 * receiveRegion(socketFd, length) -> Uint8Array | null: the descriptor, once it came (null: not
 *   yet, ask again), checked to be a file of at least `length` bytes (fstat), mapped read-write;
 *   the socket is closed then.
 * All throw with a code: EINVAL, EOPEN, ERANGE, EMMAP, EPEER (the socket's owner is another uid or
 *   did not answer).
 */
bool Descriptor(const FunctionCallbackInfo<Value>& args, int i, int* out) {
  if (!args[i]->IsInt32() || args[i].As<v8::Int32>()->Value() < 0) return false;
  *out = args[i].As<v8::Int32>()->Value();
  return true;
}

void CreateRegion(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  size_t length = 0;
  if (args.Length() != 1 || !Bytes(args, 0, &length)) {
    Throw(isolate, Exception::TypeError, "EINVAL", "createRegion(length > 0)");
    return;
  }
  int fd = memfd_create("sparkring-ring", MFD_CLOEXEC);
  if (fd < 0) {
    Throw(isolate, Exception::Error, "EOPEN", std::string("memfd_create: ") + std::strerror(errno));
    return;
  }
  int err = posix_fallocate(fd, 0, static_cast<off_t>(length));
  if (err != 0) {
    close(fd);
    Throw(isolate, Exception::Error, "EOPEN", "cannot allocate " + std::to_string(length) + " bytes of shared memory: " + std::strerror(err));
    return;
  }
  void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    err = errno;
    close(fd);
    Throw(isolate, Exception::Error, "EMMAP", std::string("cannot map the region: ") + std::strerror(err));
    return;
  }
  Local<Context> context = isolate->GetCurrentContext();
  Local<Object> out = Object::New(isolate);
  out->Set(context, String::NewFromUtf8Literal(isolate, "bytes"), Wrap(isolate, base, length)).Check();
  out->Set(context, String::NewFromUtf8Literal(isolate, "fd"), v8::Integer::New(isolate, fd)).Check();
  args.GetReturnValue().Set(out);
}

void CloseFd(const FunctionCallbackInfo<Value>& args) {
  int fd = -1;
  if (args.Length() == 1 && Descriptor(args, 0, &fd)) close(fd);
}

void PeerUid(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int fd = -1;
  struct ucred cred {};
  socklen_t len = sizeof(cred);
  if (args.Length() != 1 || !Descriptor(args, 0, &fd) || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    Throw(isolate, Exception::Error, "EPEER", "peerUid(socketFd): no peer credentials on that descriptor");
    return;
  }
  args.GetReturnValue().Set(v8::Integer::NewFromUnsigned(isolate, cred.uid));
}

// One byte and room for one descriptor: the message an SCM_RIGHTS descriptor travels in.
struct FdMessage {
  char byte = 1;
  struct iovec iov {&byte, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg {};
  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;
};

void SendFd(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int sock = -1, fd = -1;
  if (args.Length() != 2 || !Descriptor(args, 0, &sock) || !Descriptor(args, 1, &fd)) {
    Throw(isolate, Exception::TypeError, "EINVAL", "sendFd(socketFd, fd)");
    return;
  }
  FdMessage m;
  struct msghdr& msg = m.msg;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) != 1) Throw(isolate, Exception::Error, "EPEER", std::string("sendmsg: ") + std::strerror(errno));
}

void ConnectRegion(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() != 2 || !args[0]->IsString() || !args[1]->IsUint8Array()) {
    Throw(isolate, Exception::TypeError, "EINVAL", "connectRegion(name, proof)");
    return;
  }
  String::Utf8Value name_value(isolate, args[0]);
  std::string name(*name_value, name_value.length());
  Local<Uint8Array> proof = args[1].As<Uint8Array>();
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (name.empty() || name.size() + 1 > sizeof(addr.sun_path)) {
    Throw(isolate, Exception::TypeError, "EINVAL", "connectRegion: the socket name is empty or too long");
    return;
  }
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // abstract: a leading NUL, no file
  // The whole sun_path, NULs after the name included: libuv binds Node's abstract names that way.
  socklen_t addr_len = static_cast<socklen_t>(sizeof(addr));
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || connect(sock, reinterpret_cast<struct sockaddr*>(&addr), addr_len) != 0) {
    int err = errno;
    if (sock >= 0) close(sock);
    Throw(isolate, Exception::Error, "EPEER", "cannot reach the region's socket (another host?): " + std::string(std::strerror(err)));
    return;
  }
  struct ucred cred {};
  socklen_t cred_len = sizeof(cred);
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0 || cred.uid != getuid()) {
    close(sock);
    Throw(isolate, Exception::Error, "EPEER", "the region's socket belongs to another user");
    return;
  }
  const char* p = static_cast<const char*>(proof->Buffer()->Data()) + proof->ByteOffset();
  if (send(sock, p, proof->ByteLength(), MSG_NOSIGNAL) != static_cast<ssize_t>(proof->ByteLength()) ||
      fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK) != 0) {
    int err = errno;
    close(sock);
    Throw(isolate, Exception::Error, "EPEER", std::string("cannot send the proof: ") + std::strerror(err));
    return;
  }
  args.GetReturnValue().Set(v8::Integer::New(isolate, sock));
}

void ReceiveRegion(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  int sock = -1;
  size_t length = 0;
  if (args.Length() != 2 || !Descriptor(args, 0, &sock) || !Bytes(args, 1, &length)) {
    Throw(isolate, Exception::TypeError, "EINVAL", "receiveRegion(socketFd, length > 0)");
    return;
  }
  FdMessage m;
  struct msghdr& msg = m.msg;
  ssize_t got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    args.GetReturnValue().SetNull();  // not yet: the caller asks again
    return;
  }
  close(sock);
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (got != 1 || c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
    Throw(isolate, Exception::Error, "EPEER", "the region's owner refused the proof");
    return;
  }
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) < length) {
    close(fd);
    Throw(isolate, Exception::RangeError, "ERANGE", "the region handed over is not a file of " + std::to_string(length) + " bytes");
    return;
  }
  void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (base == MAP_FAILED) {
    Throw(isolate, Exception::Error, "EMMAP", std::string("cannot map the region: ") + std::strerror(err));
    return;
  }
  args.GetReturnValue().Set(Wrap(isolate, base, length));
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  exports
      ->Set(context, String::NewFromUtf8Literal(isolate, "mapRange"),
            FunctionTemplate::New(isolate, MapRange)->GetFunction(context).ToLocalChecked())
      .Check();
  const std::pair<const char*, v8::FunctionCallback> functions[] = {
      {"createRegion", CreateRegion}, {"closeFd", CloseFd}, {"peerUid", PeerUid}, {"sendFd", SendFd}, {"connectRegion", ConnectRegion}, {"receiveRegion", ReceiveRegion}};
  for (const auto& [name, fn] : functions) {
    exports
        ->Set(context, String::NewFromUtf8(isolate, name).ToLocalChecked(),
              FunctionTemplate::New(isolate, fn)->GetFunction(context).ToLocalChecked())
        .Check();
  }
}
