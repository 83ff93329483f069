#include <napi.h>
#include "llama.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  llama_backend_init();
  exports.Set("systemInfo", Napi::Function::New(env, [](const Napi::CallbackInfo & info) {
    return Napi::String::New(info.Env(), llama_print_system_info());
  }));
  return exports;
}
NODE_API_MODULE(llava_med, Init)
