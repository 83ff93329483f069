// quantize(input, output, { ftype, threads, pure, allowRequantize, keepF16: [patterns] }, abortFlag?)
// llama_model_quantize has no progress or abort hook: lib/convert/quantize.ts runs this in a
// child process when the caller wants abort (killing it) and reads progress from the log.
#include <string>
#include <vector>

#include "addon.h"
#include "common.h"
#include "llama.h"

namespace lm {

class QuantizeWorker : public PromiseWorker {
  public:
    explicit QuantizeWorker(const Napi::CallbackInfo & info) : PromiseWorker(info.Env()) {
        Napi::Env env = info.Env();
        in_ = ArgString(info, 0, "input");
        out_ = ArgString(info, 1, "output");
        Napi::Object o = ArgObject(info, 2, "options");
        p_ = llama_model_quantize_default_params();
        p_.ftype = (llama_ftype) (int) OptNumber(o, "ftype", LLAMA_FTYPE_MOSTLY_Q8_0);
        p_.nthread = (int32_t) OptNumber(o, "threads", 0);
        p_.pure = OptBool(o, "pure", false);
        p_.allow_requantize = OptBool(o, "allowRequantize", false);
        Napi::Value keep = o.Get("keepF16");
        if (keep.IsArray()) {
            Napi::Array a = keep.As<Napi::Array>();
            for (uint32_t i = 0; i < a.Length(); i++) {
                if (!a.Get(i).IsString()) ThrowTypeError(env, "keepF16 must be an array of strings");
                patterns_.push_back(a.Get(i).As<Napi::String>().Utf8Value());
            }
        }
        if (info.Length() > 3) abort_.Bind(info[3]);
    }

  protected:
    void Run() override {
        if (abort_.Aborted()) return Fail("ERR_ABORTED", "quantize aborted");
        SetCode("ERR_QUANTIZE");
        std::vector<llama_model_tensor_override> ov;
        for (const auto & p : patterns_) ov.push_back({p.c_str(), GGML_TYPE_F16});
        if (!ov.empty()) {
            ov.push_back({nullptr, GGML_TYPE_COUNT});
            p_.tt_overrides = ov.data();
        }
        uint32_t r = llama_model_quantize(in_.c_str(), out_.c_str(), &p_);
        if (r != 0) Fail("ERR_QUANTIZE", "llama_model_quantize failed for " + in_ + " (see the logger output for the reason)");
    }

  private:
    std::string in_, out_;
    llama_model_quantize_params p_;
    std::vector<std::string> patterns_;
};

static Napi::Value Quantize(const Napi::CallbackInfo & info) {
    return (new QuantizeWorker(info))->Queue();
}

Napi::Object InitQuantize(Napi::Env env, Napi::Object exports) {
    exports.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
    return exports;
}

}  // namespace lm
