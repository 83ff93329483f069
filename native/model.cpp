#include "model.h"
#include "options.h"

#include <chrono>
#include <vector>

namespace lm {

std::string TokenPiece(const llama_vocab * vocab, llama_token tok, bool special) {
    char buf[256];
    int32_t n = llama_token_to_piece(vocab, tok, buf, sizeof(buf), 0, special);
    if (n >= 0) return std::string(buf, n);
    std::string big(-n, '\0');
    n = llama_token_to_piece(vocab, tok, big.data(), (int32_t) big.size(), 0, special);
    return n >= 0 ? big.substr(0, n) : std::string();
}

Napi::Function Model::Define(Napi::Env env) {
    return DefineClass(env, "Model", {
        InstanceMethod<&Model::Info>("info"),
        InstanceMethod<&Model::Tokenize>("tokenize"),
        InstanceMethod<&Model::Detokenize>("detokenize"),
        InstanceMethod<&Model::TokenPieces>("tokenPieces"),
        InstanceMethod<&Model::Dispose>("dispose"),
        InstanceAccessor<&Model::IsDisposed>("disposed"),
    });
}

Model::Model(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Model>(info) {
    // Only LoadModelWorker creates models: it passes an External holding the pointer.
    if (info.Length() < 1 || !info[0].IsExternal()) {
        ThrowTypeError(info.Env(), "Model cannot be constructed directly; use loadModel()");
    }
    auto * p = info[0].As<Napi::External<ModelPtr>>().Data();
    model_ = *p;
    data_ = GetAddonData(info.Env());
    data_->Register(this);
}

Model::~Model() {
    if (data_) data_->Unregister(this);
    model_.reset();
}

void Model::ReleaseAtExit() { model_.reset(); }

Model * Model::FromValue(Napi::Env env, Napi::Value v) {
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(GetAddonData(env)->modelCtor.Value())) {
        ThrowTypeError(env, "expected a native Model");
    }
    return Napi::ObjectWrap<Model>::Unwrap(v.As<Napi::Object>());
}

ModelPtr Model::Ptr(Napi::Env env, const char * what) const {
    if (!model_) Throw(env, "ERR_DISPOSED", std::string(what) + ": the model has been disposed");
    return model_;
}

static Napi::Object BuildInfo(Napi::Env env, const llama_model * model) {
    const llama_vocab * vocab = llama_model_get_vocab(model);
    Napi::Object o = Napi::Object::New(env);
    char buf[512];
    llama_model_desc(model, buf, sizeof(buf));
    o.Set("description", buf);
    o.Set("size", Napi::Number::New(env, (double) llama_model_size(model)));
    o.Set("nParams", Napi::Number::New(env, (double) llama_model_n_params(model)));
    o.Set("nEmbd", llama_model_n_embd(model));
    o.Set("nEmbdInp", llama_model_n_embd_inp(model));
    const int32_t nLayer = llama_model_n_layer(model);
    o.Set("nLayer", nLayer);
    // Per-layer hparams assert on a vocab-only model (no layers): guard them.
    o.Set("nHead", nLayer > 0 ? llama_model_n_head(model) : 0);
    o.Set("nHeadKv", nLayer > 0 ? llama_model_n_head_kv(model) : 0);
    o.Set("nCtxTrain", llama_model_n_ctx_train(model));
    o.Set("nVocab", llama_vocab_n_tokens(vocab));
    o.Set("bos", llama_vocab_bos(vocab));
    o.Set("eos", llama_vocab_eos(vocab));
    o.Set("eot", llama_vocab_eot(vocab));
    o.Set("pad", llama_vocab_pad(vocab));
    o.Set("nl", llama_vocab_nl(vocab));
    o.Set("addBos", llama_vocab_get_add_bos(vocab));
    o.Set("addEos", llama_vocab_get_add_eos(vocab));
    Napi::Object meta = Napi::Object::New(env);
    const int32_t n = llama_model_meta_count(model);
    std::vector<char> kb(1024), vb(1 << 16);
    for (int32_t i = 0; i < n; i++) {
        if (llama_model_meta_key_by_index(model, i, kb.data(), kb.size()) < 0) continue;
        int32_t len = llama_model_meta_val_str_by_index(model, i, vb.data(), vb.size());
        if (len < 0) continue;
        meta.Set(kb.data(), std::string(vb.data(), std::min<size_t>(len, vb.size() - 1)));
    }
    o.Set("metadata", meta);
    return o;
}

// ---- loadModel(path, options, onProgress?, abortFlag?) -------------------------------------

class LoadModelWorker : public PromiseWorker {
  public:
    LoadModelWorker(const Napi::CallbackInfo & info) : PromiseWorker(info.Env()) {
        trimAfter_ = true;
        Napi::Env env = info.Env();
        path_ = ArgString(info, 0, "path");
        Napi::Object o = ArgObject(info, 1, "options");
        params_ = llama_model_default_params();
        // Required and range-checked; the defaults live in lib/defaults.ts (native/options.h).
        params_.n_gpu_layers = ReqInt(o, "gpuLayers", -1, 1 << 20);
        std::string mode = ReqString(o, "loadMode");
        if (mode != "auto" && mode != "mmap" && mode != "none" && mode != "mlock") {
            ThrowTypeError(env, "options.loadMode must be 'auto', 'mmap', 'none' or 'mlock'");
        }
        params_.load_mode = mode == "mmap" ? LLAMA_LOAD_MODE_MMAP
                          : mode == "none" ? LLAMA_LOAD_MODE_NONE
                          : mode == "mlock" ? LLAMA_LOAD_MODE_MLOCK : LLAMA_LOAD_MODE_AUTO;
        params_.vocab_only = ReqBool(o, "vocabOnly");
        params_.check_tensors = OptBool(o, "checkTensors", false);
        if (info.Length() > 2 && info[2].IsFunction()) {
            progress_ = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "llava-med-progress", 0, 1);
            hasProgress_ = true;
        }
        if (info.Length() > 3) abort_.Bind(info[3]);
        params_.progress_callback = &LoadModelWorker::OnProgress;
        params_.progress_callback_user_data = this;
    }
    ~LoadModelWorker() override {
        if (hasProgress_) progress_.Release();
    }

  protected:
    static bool OnProgress(float p, void * ud) {
        auto * self = static_cast<LoadModelWorker *>(ud);
        if (self->abort_.Aborted()) return false;
        if (self->hasProgress_) {
            // Thin the stream: llama.cpp reports per tensor; JS needs a few dozen updates.
            if (p >= 1.0f || p - self->lastSent_ >= 0.01f) {
                self->lastSent_ = p;
                auto * v = new float(p);
                if (self->progress_.NonBlockingCall(v, [](Napi::Env env, Napi::Function fn, float * x) {
                        if (env != nullptr) fn.Call({Napi::Number::New(env, *x)});
                        delete x;
                    }) != napi_ok) {
                    delete v;
                }
            }
        }
        return true;
    }

    void Run() override {
        if (abort_.Aborted()) return Fail("ERR_ABORTED", "model load aborted");
        SetCode("ERR_MODEL_LOAD");
        auto t0 = std::chrono::steady_clock::now();
        LogCaptureReset();
        llama_model * m = llama_model_load_from_file(path_.c_str(), params_);
        loadMs_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (m == nullptr) {
            if (abort_.Aborted()) return Fail("ERR_ABORTED", "model load aborted");
            log_ = LogCaptureTake();
            return Fail("ERR_MODEL_LOAD", "llama.cpp could not load the model from " + path_ + ": " + LogCaptureReason(log_));
        }
        LogCaptureReset();
        model_ = ModelPtr(m, llama_model_free);
    }

    Napi::Value Result(Napi::Env env) override {
        AddonData * d = GetAddonData(env);
        Napi::Object obj = d->modelCtor.New({Napi::External<ModelPtr>::New(env, &model_)});
        Napi::Object info = BuildInfo(env, model_.get());
        info.Set("loadMs", loadMs_);
        Model * m = Napi::ObjectWrap<Model>::Unwrap(obj);
        m->info_ = Napi::Persistent(info);
        return obj;
    }

  private:
    std::string path_;
    llama_model_params params_;
    Napi::ThreadSafeFunction progress_;
    bool hasProgress_ = false;
    float lastSent_ = -1.0f;
    ModelPtr model_;
    double loadMs_ = 0;
};

static Napi::Value LoadModel(const Napi::CallbackInfo & info) {
    auto * w = new LoadModelWorker(info);
    return w->Queue();
}

// ---- methods ------------------------------------------------------------------------------

Napi::Value Model::Info(const Napi::CallbackInfo & info) {
    Ptr(info.Env(), "info");
    return info_.Value();
}

Napi::Value Model::IsDisposed(const Napi::CallbackInfo & info) {
    return Napi::Boolean::New(info.Env(), !model_);
}

class TokenizeWorker : public PromiseWorker {
  public:
    TokenizeWorker(Napi::Env env, Model * /*owner*/, ModelPtr model, std::string text, bool addSpecial, bool parseSpecial)
        /* tokenization only reads the vocabulary and the worker owns a reference to the model, so
          calls may overlap and dispose() may run meanwhile */
          : PromiseWorker(env), model_(std::move(model)), text_(std::move(text)),
          addSpecial_(addSpecial), parseSpecial_(parseSpecial) {}

  protected:
    void Run() override {
        SetCode("ERR_TOKENIZE");
        const llama_vocab * vocab = llama_model_get_vocab(model_.get());
        int32_t cap = (int32_t) text_.size() + 8;
        out_.resize(cap);
        int32_t n = llama_tokenize(vocab, text_.data(), (int32_t) text_.size(), out_.data(), cap, addSpecial_, parseSpecial_);
        if (n < 0) {
            out_.resize(-n);
            n = llama_tokenize(vocab, text_.data(), (int32_t) text_.size(), out_.data(), -n, addSpecial_, parseSpecial_);
        }
        if (n < 0) return Fail("ERR_TOKENIZE", "tokenization failed");
        out_.resize(n);
    }
    Napi::Value Result(Napi::Env env) override {
        Napi::Int32Array a = Napi::Int32Array::New(env, out_.size());
        std::copy(out_.begin(), out_.end(), a.Data());
        return a;
    }

  private:
    ModelPtr model_;
    std::string text_;
    bool addSpecial_, parseSpecial_;
    std::vector<llama_token> out_;
};

// tokenize(text, addSpecial, parseSpecial)
Napi::Value Model::Tokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    ModelPtr m = Ptr(env, "tokenize");
    std::string text = ArgString(info, 0, "text");
    bool addSpecial = ArgBool(info, 1, "addSpecial");
    bool parseSpecial = ArgBool(info, 2, "parseSpecial");
    return (new TokenizeWorker(env, this, m, std::move(text), addSpecial, parseSpecial))->Queue();
}

static bool ValidTokens(const llama_vocab * vocab, const std::vector<llama_token> & t, std::string & bad) {
    const int32_t n = llama_vocab_n_tokens(vocab);
    for (llama_token x : t) {
        if (x < 0 || x >= n) {
            bad = std::to_string(x);
            return false;
        }
    }
    return true;
}

class DetokenizeWorker : public PromiseWorker {
  public:
    DetokenizeWorker(Napi::Env env, Model * /*owner*/, ModelPtr model, std::vector<llama_token> toks, bool special, bool pieces)
        /* tokenization only reads the vocabulary and the worker owns a reference to the model, so
          calls may overlap and dispose() may run meanwhile */
          : PromiseWorker(env), model_(std::move(model)), toks_(std::move(toks)),
          special_(special), pieces_(pieces) {}

  protected:
    void Run() override {
        const llama_vocab * vocab = llama_model_get_vocab(model_.get());
        std::string bad;
        if (!ValidTokens(vocab, toks_, bad)) return Fail("ERR_INVALID_ARGUMENT", "token id " + bad + " is outside the vocabulary");
        if (pieces_) {
            for (llama_token t : toks_) out_.push_back(TokenPiece(vocab, t, special_));
            return;
        }
        std::string s(toks_.size() * 8 + 16, '\0');
        int32_t n = llama_detokenize(vocab, toks_.data(), (int32_t) toks_.size(), s.data(), (int32_t) s.size(), false, special_);
        if (n < 0) {
            s.resize(-n);
            n = llama_detokenize(vocab, toks_.data(), (int32_t) toks_.size(), s.data(), (int32_t) s.size(), false, special_);
        }
        if (n < 0) return Fail("ERR_TOKENIZE", "detokenization failed");
        s.resize(n);
        out_.push_back(std::move(s));
    }
    Napi::Value Result(Napi::Env env) override {
        if (!pieces_) return Napi::Buffer<char>::Copy(env, out_[0].data(), out_[0].size());
        Napi::Array a = Napi::Array::New(env, out_.size());
        for (size_t i = 0; i < out_.size(); i++) a.Set(i, Napi::Buffer<char>::Copy(env, out_[i].data(), out_[i].size()));
        return a;
    }

  private:
    ModelPtr model_;
    std::vector<llama_token> toks_;
    bool special_, pieces_;
    std::vector<std::string> out_;
};

static std::vector<llama_token> ToVector(Napi::Int32Array a) {
    return std::vector<llama_token>(a.Data(), a.Data() + a.ElementLength());
}

// detokenize(tokens: Int32Array, special: boolean) -> Buffer (UTF-8 bytes)
Napi::Value Model::Detokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    ModelPtr m = Ptr(env, "detokenize");
    auto toks = ToVector(ArgInt32Array(info, 0, "tokens"));
    bool special = ArgBool(info, 1, "special");
    return (new DetokenizeWorker(env, this, m, std::move(toks), special, false))->Queue();
}

// tokenPieces(tokens: Int32Array, special: boolean) -> Buffer[]
Napi::Value Model::TokenPieces(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    ModelPtr m = Ptr(env, "tokenPieces");
    auto toks = ToVector(ArgInt32Array(info, 0, "tokens"));
    bool special = ArgBool(info, 1, "special");
    return (new DetokenizeWorker(env, this, m, std::move(toks), special, true))->Queue();
}

// Frees on the thread pool: dropping the last reference to a 4 GB model unmaps or frees a
// lot of memory, which must not stall the event loop.
class ReleaseWorker : public PromiseWorker {
  public:
    ReleaseWorker(Napi::Env env, std::shared_ptr<void> victim) : PromiseWorker(env), victim_(std::move(victim)) { trimAfter_ = true; }

  protected:
    void Run() override { victim_.reset(); }

  private:
    std::shared_ptr<void> victim_;
};

Napi::Promise QueueRelease(Napi::Env env, std::shared_ptr<void> victim) {
    return (new ReleaseWorker(env, std::move(victim)))->Queue();
}

Napi::Value Model::Dispose(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<void> victim = std::move(model_);
    model_.reset();
    info_.Reset();
    return QueueRelease(env, std::move(victim));
}

Napi::Object InitModel(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = Model::Define(env);
    GetAddonData(env)->modelCtor = Napi::Persistent(ctor);
    exports.Set("Model", ctor);
    exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
    return exports;
}

}  // namespace lm
