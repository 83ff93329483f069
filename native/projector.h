#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "addon.h"
#include "common.h"
#include "model.h"
#include "mtmd.h"

namespace lm {

// The output of one image encode: n_tokens rows of n_embd floats, ready to be decoded into
// any context of the same model. Immutable, so it can be shared across sequences/contexts.
struct EmbeddingData {
    std::vector<float> values;
    int32_t nTokens = 0;
    int32_t nEmbd = 0;
    double encodeMs = 0;
};
using EmbeddingPtr = std::shared_ptr<const EmbeddingData>;

class Embedding : public Napi::ObjectWrap<Embedding> {
  public:
    static Napi::Function Define(Napi::Env env);
    explicit Embedding(const Napi::CallbackInfo & info);
    static EmbeddingPtr Get(Napi::Env env, Napi::Value v);

  private:
    Napi::Value NTokens(const Napi::CallbackInfo & info);
    Napi::Value NEmbd(const Napi::CallbackInfo & info);
    Napi::Value EncodeMs(const Napi::CallbackInfo & info);
    Napi::Value ToFloat32Array(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);
    EmbeddingPtr data_;
};

// One mtmd_context (clip vision encoder + projector) bound to a text model.
class Projector : public Napi::ObjectWrap<Projector>, public Disposable {
  public:
    static Napi::Function Define(Napi::Env env);
    explicit Projector(const Napi::CallbackInfo & info);
    ~Projector() override;
    void ReleaseAtExit() override;

    struct Handle {
        ModelPtr model;  // declared first: destroyed after ctx
        std::unique_ptr<mtmd_context, decltype(&mtmd_free)> ctx{nullptr, mtmd_free};
    };
    using HandlePtr = std::shared_ptr<Handle>;

  private:
    friend class LoadProjectorWorker;
    friend class EncodeWorker;
    Napi::Value Encode(const Napi::CallbackInfo & info);
    Napi::Value ImageTokenCount(const Napi::CallbackInfo & info);
    Napi::Value Info(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);
    Napi::Value IsDisposed(const Napi::CallbackInfo & info);
    HandlePtr Ptr(Napi::Env env, const char * what) const;

    HandlePtr h_;
    BusyFlag busy_;
    AddonData * data_ = nullptr;
};

}  // namespace lm
