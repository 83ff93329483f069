// Entry point of llava_med.node: one wrapped class per llama.cpp object (Model, Projector,
// Context, Sampler, Embedding), every blocking call an AsyncWorker returning a Promise; plus
// quantize and the image preprocessing (image.cpp).
#include <napi.h>

#include <vector>

#include "addon.h"
#include "llama.h"

namespace lm {

static Napi::Value SystemInfo(const Napi::CallbackInfo & info) {
    return Napi::String::New(info.Env(), llama_print_system_info());
}

static Napi::Value Backends(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Array a = Napi::Array::New(env);
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t d = ggml_backend_dev_get(i);
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", ggml_backend_dev_name(d));
        o.Set("description", ggml_backend_dev_description(d));
        enum ggml_backend_dev_type t = ggml_backend_dev_type(d);
        o.Set("type", t == GGML_BACKEND_DEVICE_TYPE_CPU ? "cpu" : t == GGML_BACKEND_DEVICE_TYPE_GPU ? "gpu" : t == GGML_BACKEND_DEVICE_TYPE_IGPU ? "igpu" : "accel");
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(d, &free, &total);
        o.Set("memoryFree", Napi::Number::New(env, (double) free));
        o.Set("memoryTotal", Napi::Number::New(env, (double) total));
        a.Set(a.Length(), o);
    }
    return a;
}

// Frees what JS never disposed when the environment goes away (process exit, worker
// termination), so llama.cpp's own teardown never races our objects. Objects still in use
// by a running worker are left alone: their memory goes with the process.
static void Cleanup(void * arg) {
    auto * d = static_cast<AddonData *>(arg);
    ShutdownLog();
    std::vector<Disposable *> live;
    {
        std::lock_guard<std::mutex> lock(d->liveMutex);
        live.assign(d->live.begin(), d->live.end());
    }
    for (Disposable * x : live) x->ReleaseAtExit();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    auto * data = new AddonData();
    env.SetInstanceData<AddonData>(data);
    napi_add_env_cleanup_hook(env, Cleanup, data);
    InitLog(env, exports);
    llama_backend_init();
    InitModel(env, exports);
    InitProjector(env, exports);
    InitContext(env, exports);
    InitSampler(env, exports);
    InitQuantize(env, exports);
    InitImage(env, exports);
    exports.Set("systemInfo", Napi::Function::New(env, SystemInfo, "systemInfo"));
    exports.Set("backends", Napi::Function::New(env, Backends, "backends"));
    return exports;
}

}  // namespace lm

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return lm::Init(env, exports); }

NODE_API_MODULE(llava_med, InitAddon)
