/*
 * ferry_native: the one thing Node cannot do for ferry, asking the kernel
 * where a sparse file keeps its data (lseek SEEK_DATA / SEEK_HOLE).
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
#include <stdint.h>
#include <string.h>

#if defined(__linux__)
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

static napi_value throw_errno(napi_env env, int err) {
  const char *code = "EIO";
  switch (err) {
    case EBADF: code = "EBADF"; break;
    case EOVERFLOW: code = "EOVERFLOW"; break;
    case ESPIPE: code = "ESPIPE"; break;
    case EIO: code = "EIO"; break;
    default: break;
  }
  napi_throw_error(env, code, strerror(err));
  return NULL;
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

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, max;
  CHECK(env, napi_create_function(env, "dataRanges", NAPI_AUTO_LENGTH, data_ranges, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "dataRanges", fn));
  CHECK(env, napi_create_uint32(env, MAX_RANGES, &max));
  CHECK(env, napi_set_named_property(env, exports, "maxRanges", max));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
