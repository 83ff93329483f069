// Per-environment state of the addon (constructors, the log bridge, live objects for the
// exit hook). Stored with napi_set_instance_data so worker threads and multiple Node
// environments never share JS handles.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

namespace lm {

// Anything holding native memory registers here so the environment cleanup hook can free
// it when the process (or worker) exits without dispose() having been called.
class Disposable {
  public:
    virtual ~Disposable() = default;
    // Frees native resources now, on the calling thread. Safe to call twice.
    virtual void ReleaseAtExit() = 0;
};

struct AddonData {
    Napi::FunctionReference modelCtor;
    Napi::FunctionReference projectorCtor;
    Napi::FunctionReference embeddingCtor;
    Napi::FunctionReference contextCtor;
    Napi::FunctionReference samplerCtor;

    std::mutex liveMutex;
    std::unordered_set<Disposable *> live;

    void Register(Disposable * d) {
        std::lock_guard<std::mutex> lock(liveMutex);
        live.insert(d);
    }
    void Unregister(Disposable * d) {
        std::lock_guard<std::mutex> lock(liveMutex);
        live.erase(d);
    }
};

inline AddonData * GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// Drops `victim` on the thread pool (freeing a model can take long) and resolves when done.
Napi::Promise QueueRelease(Napi::Env env, std::shared_ptr<void> victim);

void InitLog(Napi::Env env, Napi::Object exports);
// The calling thread's last warn/error log lines (native/log.cpp): reset before a native call,
// take after it failed. Captured with or without a JS logger.
constexpr size_t kLogCaptureLines = 6;
void LogCaptureReset();
std::vector<std::string> LogCaptureTake();
// The lines joined for an error message ("llama.cpp logged no warning or error" when none).
std::string LogCaptureReason(const std::vector<std::string> & lines);
void ShutdownLog();
Napi::Object InitModel(Napi::Env env, Napi::Object exports);
Napi::Object InitProjector(Napi::Env env, Napi::Object exports);
Napi::Object InitContext(Napi::Env env, Napi::Object exports);
Napi::Object InitSampler(Napi::Env env, Napi::Object exports);
Napi::Object InitQuantize(Napi::Env env, Napi::Object exports);
Napi::Object InitImage(Napi::Env env, Napi::Object exports);

}  // namespace lm
