// Module entry and the helpers in common.h.
#include "common.h"

#include <net/if.h>
#include <string.h>
#include <sys/mman.h>
#include <v8.h>

#include <cerrno>
#include <cstring>

namespace xdpts {

static_assert(sizeof(napi_value) == sizeof(v8::Local<v8::Value>),
              "napi_value is a v8::Local<v8::Value> in Node's implementation");

Napi::Value ThrowErrno(Napi::Env env, const std::string& what, int err) {
  char buffer[128];
  const char* text = strerror_r(err, buffer, sizeof(buffer));
  Napi::Error error = Napi::Error::New(env, what + ": " + text);
  error.Value().Set("errno", Napi::Number::New(env, err));
  const char* name = strerrorname_np(err);
  if (name) error.Value().Set("code", Napi::String::New(env, name));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowMessage(Napi::Env env, const std::string& what) {
  Napi::TypeError::New(env, what).ThrowAsJavaScriptException();
  return env.Undefined();
}

static void UnmapBackingStore(void* data, size_t length, void*) { munmap(data, length); }

Napi::Value MappedSharedArrayBuffer(Napi::Env env, void* data, size_t length) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> store =
      v8::SharedArrayBuffer::NewBackingStore(data, length, UnmapBackingStore, nullptr);
  v8::Local<v8::SharedArrayBuffer> buffer = v8::SharedArrayBuffer::New(isolate, std::move(store));
  v8::Local<v8::Value> local = buffer;
  napi_value result;
  std::memcpy(&result, &local, sizeof(result));
  return Napi::Value(env, result);
}

void* SharedArrayBufferData(Napi::Value value, size_t* length) {
  napi_value raw = value;
  v8::Local<v8::Value> local;
  std::memcpy(static_cast<void*>(&local), &raw, sizeof(raw));
  if (local.IsEmpty() || !local->IsSharedArrayBuffer()) return nullptr;
  std::shared_ptr<v8::BackingStore> store = local.As<v8::SharedArrayBuffer>()->GetBackingStore();
  *length = store->ByteLength();
  return store->Data();
}

bool ArgString(const Napi::CallbackInfo& info, size_t index, const char* name, std::string* out) {
  if (info.Length() <= index || !info[index].IsString()) {
    ThrowMessage(info.Env(), std::string(name) + " must be a string");
    return false;
  }
  *out = info[index].As<Napi::String>().Utf8Value();
  return true;
}

bool ArgInt(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t* out) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    ThrowMessage(info.Env(), std::string(name) + " must be a number");
    return false;
  }
  *out = info[index].As<Napi::Number>().Int64Value();
  return true;
}

bool InterfaceIndex(Napi::Env env, const std::string& ifname, unsigned* ifindex) {
  *ifindex = ifname.size() < IF_NAMESIZE ? if_nametoindex(ifname.c_str()) : 0;
  if (*ifindex == 0) {
    Napi::Error error = Napi::Error::New(env, ifname + ": no such interface");
    error.Value().Set("errno", Napi::Number::New(env, ENODEV));
    error.Value().Set("code", Napi::String::New(env, "ENODEV"));
    error.ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

}  // namespace xdpts

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  xdpts::InitBpfObject(env, exports);
  xdpts::InitXsk(env, exports);
  xdpts::InitPacketSocket(env, exports);
  xdpts::InitSystem(env, exports);
  return exports;
}

NODE_API_MODULE(xdp_ts, InitAddon)
