#pragma once
// Options objects passed from TypeScript. lib/defaults.ts is the one place for defaults: TypeScript
// fills in and validates every field, and native code has no defaults of its own. Here each field is
// required and re-checked (type and range), so a wrong call is a TypeError, never a silent default or
// an out-of-range cast.

#include <napi.h>

#include <cmath>
#include <string>

#include "common.h"
#include "llama.h"

namespace lm {

inline Napi::Value ReqValue(Napi::Object o, const char * key) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) ThrowTypeError(o.Env(), std::string("options.") + key + " is required");
    return v;
}

inline int32_t ReqInt(Napi::Object o, const char * key, double lo, double hi) {
    Napi::Value v = ReqValue(o, key);
    if (!v.IsNumber()) ThrowTypeError(o.Env(), std::string("options.") + key + " must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::floor(d) || d < lo || d > hi) {
        ThrowTypeError(o.Env(), std::string("options.") + key + " must be an integer in [" + std::to_string((long long) lo) + ", " +
                                    std::to_string((long long) hi) + "]");
    }
    return (int32_t) d;
}

inline bool ReqBool(Napi::Object o, const char * key) {
    Napi::Value v = ReqValue(o, key);
    if (!v.IsBoolean()) ThrowTypeError(o.Env(), std::string("options.") + key + " must be a boolean");
    return v.As<Napi::Boolean>().Value();
}

inline std::string ReqString(Napi::Object o, const char * key) {
    Napi::Value v = ReqValue(o, key);
    if (!v.IsString()) ThrowTypeError(o.Env(), std::string("options.") + key + " must be a string");
    return v.As<Napi::String>().Utf8Value();
}

// 'auto' | 'on' | 'off'
inline llama_flash_attn_type ReqFlashAttn(Napi::Object o, const char * key) {
    std::string s = ReqString(o, key);
    if (s == "auto") return LLAMA_FLASH_ATTN_TYPE_AUTO;
    if (s == "on") return LLAMA_FLASH_ATTN_TYPE_ENABLED;
    if (s == "off") return LLAMA_FLASH_ATTN_TYPE_DISABLED;
    ThrowTypeError(o.Env(), std::string("options.") + key + " must be 'auto', 'on' or 'off'");
}

// loadProjector(model, path, options)
struct ProjectorOptions {
    bool useGpu;
    int32_t threads;
    bool warmup;
    // The vision encoder's attention (clip.cpp casts K and V to F16 when flash attention is on).
    llama_flash_attn_type flashAttn;
};

inline ProjectorOptions ReadProjectorOptions(Napi::Object o) {
    ProjectorOptions p;
    p.useGpu = ReqBool(o, "useGpu");
    p.threads = ReqInt(o, "threads", 1, 1024);
    p.warmup = ReqBool(o, "warmup");
    p.flashAttn = ReqFlashAttn(o, "flashAttn");
    return p;
}

}  // namespace lm
