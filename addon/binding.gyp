{
  "targets": [
    {
      "target_name": "xdp_ts",
      "sources": [
        "src/addon.cc",
        "src/bpf_object.cc",
        "src/xsk.cc",
        "src/packet_socket.cc",
        "src/system.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "../build/libbpf/include"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["<(module_root_dir)/../build/libbpf/lib/libbpf.a", "-lelf", "-lz"]
    }
  ]
}
