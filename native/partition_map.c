/*
 * partition_map: maps a range of a file (the partition a Spark task wrote to shared memory) into
 * a Uint8Array without copying it. Node has no mmap of its own, and the npm mmap bindings are
 * NAN-based and unmaintained, so this small N-API addon is written by hand. Built at install
 * time by scripts/build-native.mjs; sparkring reads the file instead when it is absent.
 */
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
  void* base;
  size_t length;
} mapping_t;

static void unmap(napi_env env, void* data, void* hint) {
  (void)data;
  mapping_t* m = (mapping_t*)hint;
  int64_t ignored;
  munmap(m->base, m->length);
  /* Balances the adjustment made when the mapping was handed to V8 (see below). */
  napi_adjust_external_memory(env, (int64_t)m->length, &ignored);
  free(m);
}

static napi_value fail(napi_env env, const char* code, const char* what, const char* path, int err) {
  char message[4352];
  snprintf(message, sizeof message, "%s %s: %s", what, path, strerror(err));
  napi_throw_error(env, code, message);
  return NULL;
}

/* mapRange(path: string, offset: number, length: number): Uint8Array */
static napi_value map_range(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char path[4096];
  size_t path_length;
  double offset_arg, length_arg;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_length) != napi_ok ||
      napi_get_value_double(env, argv[1], &offset_arg) != napi_ok ||
      napi_get_value_double(env, argv[2], &length_arg) != napi_ok || offset_arg < 0 || length_arg <= 0) {
    napi_throw_type_error(env, "EINVAL", "mapRange(path, offset >= 0, length > 0)");
    return NULL;
  }
  size_t offset = (size_t)offset_arg, length = (size_t)length_arg;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t start = offset - offset % page;
  size_t span = length + (offset - start);

  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(env, "EOPEN", "cannot open", path, errno); /* the message names the errno */
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < 0 || (size_t)size < offset + length) {
    close(fd);
    char message[4352];
    snprintf(message, sizeof message, "%s holds %lld bytes, fewer than the %zu asked for", path, (long long)size,
             offset + length);
    napi_throw_range_error(env, "ERANGE", message);
    return NULL;
  }
  /*
   * No MAP_POPULATE: Arrow's reader touches only each message's header, so the data's pages are
   * mapped when training first reads them, not all at once while Spark still needs the cores.
   */
  void* base = mmap(NULL, span, PROT_READ, MAP_SHARED, fd, (off_t)start);
  int err = errno;
  close(fd);
  if (base == MAP_FAILED) return fail(env, "EMMAP", "cannot map", path, err);

  mapping_t* m = malloc(sizeof *m);
  m->base = base;
  m->length = span;
  /*
   * V8 counts an ArrayBuffer's bytes as external memory and collects garbage when that grows,
   * which for a partition mapped in pieces means several full collections while it arrives. The
   * mapping is file-backed and stays until the data is dropped, so no collection can free it:
   * take its bytes back out of the count (and put them back in unmap).
   */
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)span, &ignored);
  napi_value buffer, view;
  if (napi_create_external_arraybuffer(env, base, span, unmap, m, &buffer) != napi_ok) {
    napi_adjust_external_memory(env, (int64_t)span, &ignored);
    munmap(base, span);
    free(m);
    napi_throw_error(env, "EMMAP", "cannot wrap the mapping in an ArrayBuffer");
    return NULL;
  }
  if (napi_create_typedarray(env, napi_uint8_array, length, buffer, offset - start, &view) != napi_ok) return NULL;
  return view;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "mapRange", NAPI_AUTO_LENGTH, map_range, NULL, &fn);
  napi_set_named_property(env, exports, "mapRange", fn);
  return exports;
}
