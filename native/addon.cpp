// Entry point of llava_med.node: one wrapped class per llama.cpp object (Model, Projector,
// Context, Sampler, Embedding), every blocking call an AsyncWorker returning a Promise; plus
// quantize and the image preprocessing (image.cpp).
#include <napi.h>

#include <cstdlib>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

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

// glibc serves allocations above M_MMAP_THRESHOLD with mmap (returned to the OS at free), but it
// raises the threshold dynamically, up to 32 MiB, each time such a block is freed. After the first
// load/dispose cycle the multi-MB temporaries of loading (compute buffers, KV cache, read buffers)
// therefore come from the per-thread malloc arenas, where they fragment: RSS grew 26-57 MB over
// load/dispose cycles of the demo model (54 MB on the bench model) before levelling off. A fixed
// threshold turns the dynamic raise off; blocks of 1 MiB and more always go back to the OS. Measured
// on 100 cycles of the demo model (test/llava-med/rss-cycles.test.ts): mean anonymous RSS after
// dispose 33-39 MB above the pre-load level -> 6-9 MB. A MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_
// set by the user wins (glibc applied it at startup). Process-wide, like malloc_trim in common.h.
static void FixMmapThreshold() {
#if defined(__GLIBC__)
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 1 << 20);
    // The dynamic raise also doubled the trim threshold (free top-of-heap memory kept); reset it too.
    if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, 1 << 20);
#endif
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    FixMmapThreshold();
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
