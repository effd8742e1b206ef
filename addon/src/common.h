// Helpers shared by the addon's files: errors that name the operation, and SharedArrayBuffers over
// memory the addon mapped (the UMEM and the AF_XDP rings).
#pragma once
#include <napi.h>
#include <string>

namespace xdpts {

// Throws a JS Error "<what>: <strerror(err)>" with .errno and .code ("EBUSY") set, and returns
// undefined so a caller can `return ThrowErrno(...)`.
Napi::Value ThrowErrno(Napi::Env env, const std::string& what, int err);
// Throws a JS TypeError/Error without an errno.
Napi::Value ThrowMessage(Napi::Env env, const std::string& what);

// Wraps `length` bytes at `data` in a SharedArrayBuffer whose backing store munmap()s them when the
// last reference (in any thread) is collected. The memory therefore stays valid while JS can see it.
Napi::Value MappedSharedArrayBuffer(Napi::Env env, void* data, size_t length);
// The data pointer and length of a SharedArrayBuffer (nullptr if the value is not one).
void* SharedArrayBufferData(Napi::Value value, size_t* length);

// Argument helpers: they throw a TypeError and return false when the argument is of the wrong type.
bool ArgString(const Napi::CallbackInfo& info, size_t index, const char* name, std::string* out);
bool ArgInt(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t* out);

// Interface name to index; throws "<ifname>: no such interface" when missing.
bool InterfaceIndex(Napi::Env env, const std::string& ifname, unsigned* ifindex);

void InitBpfObject(Napi::Env env, Napi::Object exports);
void InitXsk(Napi::Env env, Napi::Object exports);
void InitPacketSocket(Napi::Env env, Napi::Object exports);
void InitSystem(Napi::Env env, Napi::Object exports);

}  // namespace xdpts
