#pragma once

#include <napi.h>

#include "addon.h"
#include "common.h"
#include "llama.h"
#include "model.h"

namespace lm {

// One llama_sampler chain (per generated sequence). Built from a plain options object;
// the defaults and the HF-compatible order are decided in TypeScript.
class Sampler : public Napi::ObjectWrap<Sampler> {
  public:
    static Napi::Function Define(Napi::Env env);
    explicit Sampler(const Napi::CallbackInfo & info);
    ~Sampler() override;
    static Sampler * FromValue(Napi::Env env, Napi::Value v);
    llama_sampler * Chain(Napi::Env env) const;
    std::atomic<int> inUse{0};  // >0 while a context worker samples with it

  private:
    Napi::Value Accept(const Napi::CallbackInfo & info);
    Napi::Value Reset(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);
    llama_sampler * chain_ = nullptr;
    ModelPtr model_;
    int32_t nVocab_ = 0;
};

}  // namespace lm
