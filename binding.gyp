{
  "targets": [
    {
      "target_name": "ferry_native",
      "sources": ["native/ferry_native.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
