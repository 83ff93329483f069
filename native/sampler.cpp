#include "sampler.h"

#include <string>

namespace lm {

Napi::Function Sampler::Define(Napi::Env env) {
    return DefineClass(env, "Sampler", {
        InstanceMethod<&Sampler::Accept>("accept"),
        InstanceMethod<&Sampler::Reset>("reset"),
        InstanceMethod<&Sampler::Dispose>("dispose"),
    });
}

// new Sampler(model, { temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed })
// The chain applies, in order: repetition penalty, temperature, top-k, top-p, min-p, then
// draws (or takes the argmax when temperature <= 0). Temperature before top-p mirrors
// Hugging Face's generate(), whose processors run in that order.
Sampler::Sampler(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Sampler>(info) {
    Napi::Env env = info.Env();
    model_ = Model::FromValue(env, info[0])->Ptr(env, "Sampler");
    Napi::Object o = ArgObject(info, 1, "options");
    const double temperature = OptNumber(o, "temperature", 0.0);
    const int32_t topK = (int32_t) OptNumber(o, "topK", 0);
    const double topP = OptNumber(o, "topP", 1.0);
    const double minP = OptNumber(o, "minP", 0.0);
    const double repeatPenalty = OptNumber(o, "repeatPenalty", 1.0);
    const int32_t repeatLastN = (int32_t) OptNumber(o, "repeatLastN", 64);
    const double seed = OptNumber(o, "seed", (double) LLAMA_DEFAULT_SEED);
    if (!(repeatPenalty > 0)) ThrowTypeError(env, "repeatPenalty must be > 0");
    nVocab_ = llama_vocab_n_tokens(llama_model_get_vocab(model_.get()));

    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    chain_ = llama_sampler_chain_init(cp);
    if (repeatPenalty != 1.0) {
        llama_sampler_chain_add(chain_, llama_sampler_init_penalties(nVocab_, repeatLastN, (float) repeatPenalty, 0.0f, 0.0f));
    }
    if (temperature <= 0) {
        llama_sampler_chain_add(chain_, llama_sampler_init_greedy());
    } else {
        llama_sampler_chain_add(chain_, llama_sampler_init_temp((float) temperature));
        if (topK > 0) llama_sampler_chain_add(chain_, llama_sampler_init_top_k(topK));
        if (topP < 1.0) llama_sampler_chain_add(chain_, llama_sampler_init_top_p((float) topP, 1));
        if (minP > 0.0) llama_sampler_chain_add(chain_, llama_sampler_init_min_p((float) minP, 1));
        llama_sampler_chain_add(chain_, llama_sampler_init_dist((uint32_t) seed));
    }
}

Sampler::~Sampler() {
    if (chain_) llama_sampler_free(chain_);
}

Sampler * Sampler::FromValue(Napi::Env env, Napi::Value v) {
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(GetAddonData(env)->samplerCtor.Value())) {
        ThrowTypeError(env, "expected a native Sampler");
    }
    return Napi::ObjectWrap<Sampler>::Unwrap(v.As<Napi::Object>());
}

llama_sampler * Sampler::Chain(Napi::Env env) const {
    if (!chain_) Throw(env, "ERR_DISPOSED", "the sampler has been disposed");
    return chain_;
}

// accept(token): feeds a token the sampler did not choose itself (e.g. the prompt, for the
// repetition penalty's history).
Napi::Value Sampler::Accept(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    llama_sampler * c = Chain(env);
    if (inUse.load() > 0) Throw(env, "ERR_BUSY", "the sampler is in use by a running step");
    int32_t t = ArgInt(info, 0, "token");
    if (t < 0 || t >= nVocab_) ThrowTypeError(env, "token id " + std::to_string(t) + " is outside the vocabulary");
    llama_sampler_accept(c, t);
    return env.Undefined();
}

Napi::Value Sampler::Reset(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    llama_sampler * c = Chain(env);
    if (inUse.load() > 0) Throw(env, "ERR_BUSY", "the sampler is in use by a running step");
    llama_sampler_reset(c);
    return env.Undefined();
}

Napi::Value Sampler::Dispose(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (inUse.load() > 0) Throw(env, "ERR_BUSY", "the sampler is in use by a running step");
    if (chain_) llama_sampler_free(chain_);
    chain_ = nullptr;
    model_.reset();
    return env.Undefined();
}

Napi::Object InitSampler(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = Sampler::Define(env);
    GetAddonData(env)->samplerCtor = Napi::Persistent(ctor);
    exports.Set("Sampler", ctor);
    return exports;
}

}  // namespace lm
