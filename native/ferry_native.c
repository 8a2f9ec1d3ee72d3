/*
 * ferry_native: what Node cannot do for ferry. Asking the kernel where a
 * sparse file keeps its data (lseek SEEK_DATA / SEEK_HOLE), and reading and
 * writing extended attributes without following symlinks (llistxattr,
 * lgetxattr, lsetxattr), for exact root trees in the image store.
 *
 *   listXattrs(path) -> [[name, Buffer value], ...] | null  (null: unsupported)
 *   setXattr(path, name, Buffer value) -> undefined
 *   syncfs(fd) -> undefined   (flush the whole filesystem holding fd, once)
 *   willNeed(fd, offset, length) -> undefined
 *                             (posix_fadvise WILLNEED: start reading ahead;
 *                              advisory, so failures are ignored)
 *
 *   startWriteback(fd) -> Promise<boolean>
 *                             (sync_file_range SYNC_FILE_RANGE_WRITE over the
 *                              whole file, on the libuv pool: the kernel starts
 *                              writing the file's dirty pages to the device and
 *                              returns without waiting for them, without a
 *                              journal commit or a cache flush; resolves false
 *                              where the call is unsupported, so the caller can
 *                              fall back to fdatasync)
 *
 *   dataRanges(fd, offset, length[, limit]) -> [[start, end], ...] | null
 *
 * Returns the data ranges within [offset, offset + length), clamped to it, in
 * increasing order; at most `limit` (default and cap MAX_RANGES) per call: the
 * caller continues from the end of the last range when it receives that many.
 * lseek moves the file position, which is harmless as Node reads with pread.
 * Returns null when the
 * platform or filesystem cannot tell, so the caller treats everything as data.
 * Throws an Error with `code` set to the errno name on other failures.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#if defined(__linux__)
#include <stdlib.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>
#endif

#include <node_api.h>

#define MAX_RANGES 65536
/* Largest offset a JS number holds exactly. */
#define MAX_SAFE ((int64_t)9007199254740991LL)

#define CHECK(env, call)                                  \
  do {                                                    \
    if ((call) != napi_ok) {                              \
      napi_throw_error((env), NULL, "ferry_native: N-API call failed"); \
      return NULL;                                        \
    }                                                     \
  } while (0)

/* The errno's name, as Node's own errors put it in `code` (EIO for the rest). */
static const char *errno_name(int err) {
  switch (err) {
    case EBADF: return "EBADF";
    case EOVERFLOW: return "EOVERFLOW";
    case ESPIPE: return "ESPIPE";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ERANGE: return "ERANGE";
    case ENOSPC: return "ENOSPC";
    case E2BIG: return "E2BIG";
    case ENOTSUP: return "ENOTSUP";
    case ENOMEM: return "ENOMEM";
    default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, int err) {
  napi_throw_error(env, errno_name(err), strerror(err));
  return NULL;
}

/* Reads a file descriptor as the only argument; throws a TypeError with `usage` when it is not one. */
static bool fd_argument(napi_env env, napi_callback_info info, const char *usage, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], fd) != napi_ok || *fd < 0) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

static napi_value null_value(napi_env env) {
  napi_value v;
  CHECK(env, napi_get_null(env, &v));
  return v;
}

static napi_value data_ranges(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "dataRanges(fd, offset, length) takes three numbers");
    return NULL;
  }
  int32_t fd;
  int64_t offset, length;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "dataRanges(fd, offset, length) takes three numbers");
    return NULL;
  }
  uint32_t limit = MAX_RANGES;
  napi_valuetype t = napi_undefined;
  if (argc >= 4) CHECK(env, napi_typeof(env, argv[3], &t));
  if (t != napi_undefined &&
      (napi_get_value_uint32(env, argv[3], &limit) != napi_ok || limit == 0)) {
    napi_throw_type_error(env, NULL, "dataRanges: limit must be a positive number");
    return NULL;
  }
  if (limit > MAX_RANGES) limit = MAX_RANGES;
  if (fd < 0 || offset < 0 || length < 0 || offset > MAX_SAFE - length) {
    napi_throw_range_error(env, NULL, "dataRanges: invalid fd or range");
    return NULL;
  }

  napi_value result;
  CHECK(env, napi_create_array(env, &result));

#if defined(__linux__) && defined(SEEK_DATA) && defined(SEEK_HOLE)
  const int64_t end = offset + length;
  int64_t pos = offset;
  uint32_t count = 0;
  while (pos < end && count < limit) {
    off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
    if (data < 0) {
      int err = errno;
      if (err == ENXIO) break; /* no data at or after pos */
      if (err == EINVAL || err == EOPNOTSUPP) return null_value(env); /* cannot tell */
      return throw_errno(env, err);
    }
    if ((int64_t)data >= end) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) {
      int err = errno;
      if (err == ENXIO) break; /* the file shrank under us */
      if (err == EINVAL || err == EOPNOTSUPP) return null_value(env);
      return throw_errno(env, err);
    }
    int64_t start = (int64_t)data < pos ? pos : (int64_t)data;
    int64_t stop = (int64_t)hole > end ? end : (int64_t)hole;
    if (stop <= start) break; /* defensive: no progress means a racing change */
    napi_value pair, a, b;
    CHECK(env, napi_create_array_with_length(env, 2, &pair));
    CHECK(env, napi_create_int64(env, start, &a));
    CHECK(env, napi_create_int64(env, stop, &b));
    CHECK(env, napi_set_element(env, pair, 0, a));
    CHECK(env, napi_set_element(env, pair, 1, b));
    CHECK(env, napi_set_element(env, result, count, pair));
    count++;
    pos = stop;
  }
  return result;
#else
  (void)result;
  return null_value(env);
#endif
}

/* Largest xattr list and value ferry reads (Linux caps values at 64 KiB). */
#define XATTR_LIST_MAX_BYTES 65536
#define XATTR_VALUE_MAX_BYTES 65536

static int get_path(napi_env env, napi_value v, char *buf, size_t len) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, buf, len, &n) != napi_ok || n + 1 >= len) return -1;
  if (strlen(buf) != n) return -1; /* an embedded NUL */
  return 0;
}

static napi_value list_xattrs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[4097];
  if (argc < 1 || get_path(env, argv[0], path, sizeof path) != 0) {
    napi_throw_type_error(env, NULL, "listXattrs(path) takes a path");
    return NULL;
  }
#if defined(__linux__)
  char *names = malloc(XATTR_LIST_MAX_BYTES);
  char *value = malloc(XATTR_VALUE_MAX_BYTES);
  if (names == NULL || value == NULL) {
    free(names);
    free(value);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  ssize_t len = llistxattr(path, names, XATTR_LIST_MAX_BYTES);
  if (len < 0) {
    int err = errno;
    free(names);
    free(value);
    if (err == ENOTSUP) return null_value(env);
    return throw_errno(env, err);
  }
  napi_value result;
  if (napi_create_array(env, &result) != napi_ok) goto fail;
  uint32_t count = 0;
  for (ssize_t at = 0; at < len;) {
    const char *name = names + at;
    size_t nlen = strnlen(name, (size_t)(len - at));
    at += (ssize_t)nlen + 1;
    if (nlen == 0) continue;
    ssize_t vlen = lgetxattr(path, name, value, XATTR_VALUE_MAX_BYTES);
    if (vlen < 0) {
      if (errno == ENODATA) continue; /* removed meanwhile */
      int err = errno;
      free(names);
      free(value);
      return throw_errno(env, err);
    }
    napi_value pair, n, v;
    if (napi_create_array_with_length(env, 2, &pair) != napi_ok ||
        napi_create_string_utf8(env, name, nlen, &n) != napi_ok ||
        napi_create_buffer_copy(env, (size_t)vlen, value, NULL, &v) != napi_ok ||
        napi_set_element(env, pair, 0, n) != napi_ok || napi_set_element(env, pair, 1, v) != napi_ok ||
        napi_set_element(env, result, count++, pair) != napi_ok)
      goto fail;
  }
  free(names);
  free(value);
  return result;
fail:
  free(names);
  free(value);
  napi_throw_error(env, NULL, "ferry_native: N-API call failed");
  return NULL;
#else
  return null_value(env);
#endif
}

static napi_value set_xattr(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[4097], name[256];
  void *data = NULL;
  size_t dlen = 0;
  bool is_buffer = false;
  if (argc < 3 || get_path(env, argv[0], path, sizeof path) != 0 ||
      get_path(env, argv[1], name, sizeof name) != 0 ||
      napi_is_buffer(env, argv[2], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[2], &data, &dlen) != napi_ok || dlen > XATTR_VALUE_MAX_BYTES) {
    napi_throw_type_error(env, NULL, "setXattr(path, name, value) takes a path, a name and a Buffer of at most 64 KiB");
    return NULL;
  }
#if defined(__linux__)
  if (lsetxattr(path, name, data, dlen, 0) != 0) return throw_errno(env, errno);
#endif
  napi_value undef;
  CHECK(env, napi_get_undefined(env, &undef));
  return undef;
}

static napi_value sync_fs(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, "syncfs(fd) takes a file descriptor", &fd)) return NULL;
#if defined(__linux__)
  if (syncfs(fd) != 0) return throw_errno(env, errno);
#else
  if (fsync(fd) != 0) return throw_errno(env, errno);
#endif
  napi_value undef;
  CHECK(env, napi_get_undefined(env, &undef));
  return undef;
}

static napi_value will_need(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  int64_t offset, length;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok || offset < 0 ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || length < 0) {
    napi_throw_type_error(env, NULL, "willNeed(fd, offset, length) takes a descriptor and a range");
    return NULL;
  }
#if defined(__linux__)
  (void)posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_WILLNEED);
#endif
  napi_value undef;
  CHECK(env, napi_get_undefined(env, &undef));
  return undef;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int err;
} writeback_job;

static void writeback_execute(napi_env env, void *data) {
  (void)env;
  writeback_job *job = data;
#if defined(__linux__)
  job->err = sync_file_range(job->fd, 0, 0, SYNC_FILE_RANGE_WRITE) == 0 ? 0 : errno;
#else
  job->err = ENOSYS;
#endif
}

static void writeback_complete(napi_env env, napi_status status, void *data) {
  writeback_job *job = data;
  napi_value result;
  if (status != napi_ok) {
    napi_get_boolean(env, false, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else if (job->err == 0 || job->err == ENOSYS || job->err == EINVAL || job->err == ESPIPE) {
    /* EINVAL/ESPIPE: not a regular file or a filesystem without it: unsupported, not a failure. */
    napi_get_boolean(env, job->err == 0, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value msg, code, error;
    napi_create_string_utf8(env, strerror(job->err), NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, errno_name(job->err), NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value start_writeback(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!fd_argument(env, info, "startWriteback(fd) takes a file descriptor", &fd)) return NULL;
  writeback_job *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_errno(env, ENOMEM);
  job->fd = fd;
  napi_value promise, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "ferry:startWriteback", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, writeback_execute, writeback_complete, job,
                             &job->work) != napi_ok) {
    free(job);
    napi_throw_error(env, NULL, "ferry_native: N-API call failed");
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    free(job);
    napi_throw_error(env, NULL, "ferry_native: N-API call failed");
    return NULL;
  }
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, max;
  CHECK(env, napi_create_function(env, "syncfs", NAPI_AUTO_LENGTH, sync_fs, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "syncfs", fn));
  CHECK(env, napi_create_function(env, "willNeed", NAPI_AUTO_LENGTH, will_need, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "willNeed", fn));
  CHECK(env, napi_create_function(env, "listXattrs", NAPI_AUTO_LENGTH, list_xattrs, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "listXattrs", fn));
  CHECK(env, napi_create_function(env, "setXattr", NAPI_AUTO_LENGTH, set_xattr, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "setXattr", fn));
  CHECK(env, napi_create_function(env, "startWriteback", NAPI_AUTO_LENGTH, start_writeback, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "startWriteback", fn));
  CHECK(env, napi_create_function(env, "dataRanges", NAPI_AUTO_LENGTH, data_ranges, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "dataRanges", fn));
  CHECK(env, napi_create_uint32(env, MAX_RANGES, &max));
  CHECK(env, napi_set_named_property(env, exports, "maxRanges", max));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
