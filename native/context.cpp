// One llama_context: KV cache, decode of text tokens and image embeddings, sampling steps,
// logits. The generation loop itself runs in TypeScript (lib/engine/generate.ts), one
// worker per token, so abort and stop strings are handled between tokens.
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "addon.h"
#include "common.h"
#include "model.h"
#include "options.h"
#include "projector.h"
#include "sampler.h"

namespace lm {

struct ContextHandle {
    ModelPtr model;  // declared first: destroyed after ctx
    std::unique_ptr<llama_context, decltype(&llama_free)> ctx{nullptr, llama_free};
    std::atomic<const AbortFlag *> abort{nullptr};
    int32_t nVocab = 0;
    int32_t nEmbd = 0;
};
using ContextPtr = std::shared_ptr<ContextHandle>;

// ggml calls this between graph nodes: a long prefill stops within one node of the flag.
static bool AbortCallback(void * data) {
    const AbortFlag * f = static_cast<ContextHandle *>(data)->abort.load();
    return f != nullptr && f->Aborted();
}

class Context : public Napi::ObjectWrap<Context>, public Disposable {
  public:
    static Napi::Function Define(Napi::Env env) {
        return DefineClass(env, "Context", {
            InstanceMethod<&Context::Decode>("decode"),
            InstanceMethod<&Context::DecodeEmbedding>("decodeEmbedding"),
            InstanceMethod<&Context::Sample>("sample"),
            InstanceMethod<&Context::Step>("step"),
            InstanceMethod<&Context::Logits>("logits"),
            InstanceMethod<&Context::LogProbs>("logProbs"),
            InstanceMethod<&Context::MemoryClear>("memoryClear"),
            InstanceMethod<&Context::SeqRm>("seqRm"),
            InstanceMethod<&Context::SeqCopy>("seqCopy"),
            InstanceMethod<&Context::SeqPosMax>("seqPosMax"),
            InstanceMethod<&Context::Perf>("perf"),
            InstanceMethod<&Context::PerfReset>("perfReset"),
            InstanceMethod<&Context::SetThreads>("setThreads"),
            InstanceMethod<&Context::Info>("info"),
            InstanceMethod<&Context::Dispose>("dispose"),
            InstanceAccessor<&Context::IsDisposed>("disposed"),
        });
    }

    explicit Context(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Context>(info) {
        if (info.Length() < 1 || !info[0].IsExternal()) ThrowTypeError(info.Env(), "Context cannot be constructed directly; use createContext()");
        h_ = *info[0].As<Napi::External<ContextPtr>>().Data();
        data_ = GetAddonData(info.Env());
        data_->Register(this);
    }
    ~Context() override {
        if (data_) data_->Unregister(this);
    }
    void ReleaseAtExit() override {
        if (!busy.Busy()) h_.reset();
    }

    ContextPtr Ptr(Napi::Env env, const char * what) const {
        if (!h_) Throw(env, "ERR_DISPOSED", std::string(what) + ": the context has been disposed");
        return h_;
    }
    // Synchronous methods are only bookkeeping (KV cell metadata, counters): they must not
    // run while a worker uses the context.
    ContextPtr IdlePtr(Napi::Env env, const char * what) {
        ContextPtr h = Ptr(env, what);
        if (busy.Busy()) Throw(env, "ERR_BUSY", std::string(what) + ": the context is busy with another operation");
        return h;
    }

    BusyFlag busy;

  private:
    Napi::Value Decode(const Napi::CallbackInfo & info);
    Napi::Value DecodeEmbedding(const Napi::CallbackInfo & info);
    Napi::Value Sample(const Napi::CallbackInfo & info);
    Napi::Value Step(const Napi::CallbackInfo & info);
    Napi::Value Logits(const Napi::CallbackInfo & info);
    Napi::Value LogProbs(const Napi::CallbackInfo & info);

    Napi::Value MemoryClear(const Napi::CallbackInfo & info) {
        ContextPtr h = IdlePtr(info.Env(), "memoryClear");
        llama_memory_clear(llama_get_memory(h->ctx.get()), true);
        return info.Env().Undefined();
    }
    // A sequence id of this context: llama.cpp asserts (seq_rm, seq_cp) or indexes out of bounds
    // (seq_pos_max) on anything outside [0, n_seq_max).
    static llama_seq_id SeqArg(const Napi::CallbackInfo & info, size_t i, const char * name, const ContextPtr & h) {
        if (info.Length() <= i || !info[i].IsNumber()) ThrowTypeError(info.Env(), std::string(name) + " must be a number");
        const double v = info[i].As<Napi::Number>().DoubleValue();
        const double n = (double) llama_n_seq_max(h->ctx.get());
        if (!(v >= 0 && v < n) || v != std::floor(v)) ThrowTypeError(info.Env(), std::string(name) + " must be an integer sequence id in [0, " + std::to_string((int) n) + ")");
        return (llama_seq_id) v;
    }
    Napi::Value SeqRm(const Napi::CallbackInfo & info) {
        ContextPtr h = IdlePtr(info.Env(), "seqRm");
        bool ok = llama_memory_seq_rm(llama_get_memory(h->ctx.get()), SeqArg(info, 0, "seq", h), ArgInt(info, 1, "p0"), ArgInt(info, 2, "p1"));
        return Napi::Boolean::New(info.Env(), ok);
    }
    // seqCopy(src, dst): dst's cells become a copy of src's (positions and K/V values); the caller
    // trims dst to the prefix it wants (seqRm). With one KV buffer per sequence (kv_unified false)
    // llama.cpp supports a copy across buffers only for the whole buffer (p0 = p1 = -1): it resets
    // dst's cells, gives them src's positions, and queues the buffer copy, which the next
    // llama_decode applies before it computes anything (llama_kv_cache::update). Every change to
    // src's values goes through a decode, so the copy always sees src's values as of this call.
    // In one shared buffer the cells are shared (no data moves); dst is emptied first so that both
    // layouts mean "dst holds what src holds".
    Napi::Value SeqCopy(const Napi::CallbackInfo & info) {
        ContextPtr h = IdlePtr(info.Env(), "seqCopy");
        const llama_seq_id src = SeqArg(info, 0, "src", h), dst = SeqArg(info, 1, "dst", h);
        if (src == dst) ThrowTypeError(info.Env(), "seqCopy: src and dst must differ");
        llama_memory_t mem = llama_get_memory(h->ctx.get());
        llama_memory_seq_rm(mem, dst, -1, -1);
        llama_memory_seq_cp(mem, src, dst, -1, -1);
        return info.Env().Undefined();
    }
    Napi::Value SeqPosMax(const Napi::CallbackInfo & info) {
        ContextPtr h = IdlePtr(info.Env(), "seqPosMax");
        return Napi::Number::New(info.Env(), llama_memory_seq_pos_max(llama_get_memory(h->ctx.get()), SeqArg(info, 0, "seq", h)));
    }
    Napi::Value Perf(const Napi::CallbackInfo & info) {
        ContextPtr h = IdlePtr(info.Env(), "perf");
        llama_perf_context_data d = llama_perf_context(h->ctx.get());
        Napi::Object o = Napi::Object::New(info.Env());
        o.Set("promptMs", d.t_p_eval_ms);
        o.Set("promptTokens", d.n_p_eval);
        o.Set("evalMs", d.t_eval_ms);
        o.Set("evalTokens", d.n_eval);
        o.Set("graphsReused", d.n_reused);
        return o;
    }
    Napi::Value PerfReset(const Napi::CallbackInfo & info) {
        ContextPtr h = IdlePtr(info.Env(), "perfReset");
        llama_perf_context_reset(h->ctx.get());
        return info.Env().Undefined();
    }
    Napi::Value SetThreads(const Napi::CallbackInfo & info) {
        ContextPtr h = IdlePtr(info.Env(), "setThreads");
        int32_t n = ArgInt(info, 0, "threads"), nb = ArgInt(info, 1, "threadsBatch");
        if (n < 1 || nb < 1) ThrowTypeError(info.Env(), "threads must be >= 1");
        llama_set_n_threads(h->ctx.get(), n, nb);
        return info.Env().Undefined();
    }
    Napi::Value Info(const Napi::CallbackInfo & info) {
        ContextPtr h = Ptr(info.Env(), "info");
        Napi::Object o = Napi::Object::New(info.Env());
        o.Set("nCtx", llama_n_ctx(h->ctx.get()));
        o.Set("nCtxSeq", llama_n_ctx_seq(h->ctx.get()));
        o.Set("nBatch", llama_n_batch(h->ctx.get()));
        o.Set("nUbatch", llama_n_ubatch(h->ctx.get()));
        o.Set("nSeqMax", llama_n_seq_max(h->ctx.get()));
        o.Set("nVocab", h->nVocab);
        o.Set("nEmbd", h->nEmbd);
        return o;
    }
    Napi::Value Dispose(const Napi::CallbackInfo & info) {
        Napi::Env env = info.Env();
        if (busy.Busy()) Throw(env, "ERR_BUSY", "the context is busy; wait for the running call before dispose()");
        std::shared_ptr<void> victim = std::move(h_);
        h_.reset();
        return QueueRelease(env, std::move(victim));
    }
    Napi::Value IsDisposed(const Napi::CallbackInfo & info) { return Napi::Boolean::New(info.Env(), !h_); }

    ContextPtr h_;
    AddonData * data_ = nullptr;
};

// ---- createContext(model, options) --------------------------------------------------------

static ggml_type KvType(Napi::Env env, const std::string & s) {
    if (s == "f16") return GGML_TYPE_F16;
    if (s == "f32") return GGML_TYPE_F32;
    if (s == "bf16") return GGML_TYPE_BF16;
    if (s == "q8_0") return GGML_TYPE_Q8_0;
    if (s == "q4_0") return GGML_TYPE_Q4_0;
    ThrowTypeError(env, "unknown KV cache type " + s);
}

class CreateContextWorker : public PromiseWorker {
  public:
    CreateContextWorker(const Napi::CallbackInfo & info) : PromiseWorker(info.Env()) {
        trimAfter_ = true;
        Napi::Env env = info.Env();
        model_ = Model::FromValue(env, info[0])->Ptr(env, "createContext");
        Napi::Object o = ArgObject(info, 1, "options");
        p_ = llama_context_default_params();
        // Every field required and range-checked; the defaults live in lib/defaults.ts (native/options.h).
        p_.n_ctx = (uint32_t) ReqInt(o, "nCtx", 1, 1 << 24);
        p_.n_batch = (uint32_t) ReqInt(o, "nBatch", 1, 1 << 24);
        p_.n_ubatch = (uint32_t) ReqInt(o, "nUbatch", 1, 1 << 24);
        p_.n_seq_max = (uint32_t) ReqInt(o, "nSeqMax", 1, 256);  // LLAMA_MAX_SEQ (src/llama-cparams.h)
        p_.n_threads = ReqInt(o, "threads", 1, 1024);
        p_.n_threads_batch = ReqInt(o, "threadsBatch", 1, 1024);
        p_.flash_attn_type = ReqFlashAttn(o, "flashAttn");
        p_.type_k = KvType(env, ReqString(o, "typeK"));
        p_.type_v = KvType(env, ReqString(o, "typeV"));
        p_.kv_unified = ReqBool(o, "kvUnified");
        p_.no_perf = false;  // llama.cpp's default is true, which zeroes every timing
        p_.offload_kqv = OptBool(o, "offloadKqv", true);
    }

  protected:
    void Run() override {
        SetCode("ERR_CONTEXT_CREATE");
        h_ = std::make_shared<ContextHandle>();
        h_->model = model_;
        p_.abort_callback = AbortCallback;
        p_.abort_callback_data = h_.get();
        llama_context * c = llama_init_from_model(model_.get(), p_);
        if (c == nullptr) {
            h_.reset();
            return Fail("ERR_CONTEXT_CREATE", "llama.cpp could not create a context (n_ctx " + std::to_string(p_.n_ctx) +
                                                  "); try a smaller contextSize, or see the logger output");
        }
        h_->ctx.reset(c);
        h_->nVocab = llama_vocab_n_tokens(llama_model_get_vocab(model_.get()));
        h_->nEmbd = llama_model_n_embd_inp(model_.get());
    }
    Napi::Value Result(Napi::Env env) override {
        return GetAddonData(env)->contextCtor.New({Napi::External<ContextPtr>::New(env, &h_)});
    }

  private:
    ModelPtr model_;
    llama_context_params p_;
    ContextPtr h_;
};

static Napi::Value CreateContext(const Napi::CallbackInfo & info) {
    return (new CreateContextWorker(info))->Queue();
}

// ---- shared decode machinery --------------------------------------------------------------

struct SampleResult {
    std::vector<llama_token> tokens;
    std::vector<std::string> pieces;
    std::vector<uint8_t> eog;
};

// Base for workers that run on the context: holds the busy lease and installs the caller's
// abort flag for ggml's abort callback while Run() executes.
class ContextWorker : public PromiseWorker {
  public:
    ContextWorker(const Napi::CallbackInfo & info, Context * self, ContextPtr h, size_t abortArg)
        : PromiseWorker(info.Env()), lease_(self->Value(), &self->busy, "context"), h_(std::move(h)) {
        computeThread_ = true;
        if (info.Length() > abortArg) abort_.Bind(info[abortArg]);
    }

  protected:
    void Execute() override {
        h_->abort.store(&abort_);
        PromiseWorker::Execute();
        h_->abort.store(nullptr);
    }

    // Decodes one llama_batch and maps llama_decode's status to an error code.
    bool DecodeBatch(llama_batch & b) {
        if (abort_.Aborted()) {
            Fail("ERR_ABORTED", "decode aborted");
            return false;
        }
        int32_t r = llama_decode(h_->ctx.get(), b);
        if (r == 0) return true;
        if (r == 1) Fail("ERR_CONTEXT_FULL", "the context is full: no KV cache slot for " + std::to_string(b.n_tokens) +
                                                  " tokens; use a larger contextSize or a shorter prompt");
        else if (r == 2) Fail("ERR_ABORTED", "decode aborted");
        else Fail("ERR_DECODE", "llama_decode failed with status " + std::to_string(r));
        return false;
    }

    void SampleInto(SampleResult & out, const std::vector<llama_sampler *> & chains, const std::vector<int32_t> & idxs) {
        const llama_vocab * vocab = llama_model_get_vocab(h_->model.get());
        for (size_t i = 0; i < chains.size(); i++) {
            llama_token t = llama_sampler_sample(chains[i], h_->ctx.get(), idxs[i]);  // also accepts t
            out.tokens.push_back(t);
            out.pieces.push_back(TokenPiece(vocab, t, false));
            out.eog.push_back(llama_vocab_is_eog(vocab, t) ? 1 : 0);
        }
    }

    static Napi::Object SampleToJs(Napi::Env env, const SampleResult & r) {
        Napi::Object o = Napi::Object::New(env);
        Napi::Int32Array t = Napi::Int32Array::New(env, r.tokens.size());
        std::copy(r.tokens.begin(), r.tokens.end(), t.Data());
        Napi::Array p = Napi::Array::New(env, r.pieces.size());
        for (size_t i = 0; i < r.pieces.size(); i++) p.Set(i, Napi::Buffer<char>::Copy(env, r.pieces[i].data(), r.pieces[i].size()));
        Napi::Uint8Array e = Napi::Uint8Array::New(env, r.eog.size());
        std::copy(r.eog.begin(), r.eog.end(), e.Data());
        o.Set("tokens", t);
        o.Set("pieces", p);
        o.Set("eog", e);
        return o;
    }

    BusyLease lease_;
    ContextPtr h_;
};

// Holds the samplers a step uses, marking them in use so JS cannot free them meanwhile.
class SamplerSet {
  public:
    void Bind(Napi::Env env, Napi::Value v, size_t expected) {
        if (!v.IsArray()) ThrowTypeError(env, "samplers must be an array");
        Napi::Array a = v.As<Napi::Array>();
        if (a.Length() != expected) ThrowTypeError(env, "need one sampler per sampled position");
        for (uint32_t i = 0; i < a.Length(); i++) {
            Sampler * s = Sampler::FromValue(env, a.Get(i));
            chains.push_back(s->Chain(env));
            owners.push_back(s);
            refs.push_back(Napi::Persistent(a.Get(i).As<Napi::Object>()));
        }
        for (Sampler * s : owners) s->inUse++;
    }
    ~SamplerSet() {
        for (Sampler * s : owners) s->inUse--;
    }
    std::vector<llama_sampler *> chains;

  private:
    std::vector<Sampler *> owners;
    std::vector<Napi::ObjectReference> refs;
};

struct TokenBatchInput {
    std::vector<llama_token> tokens;
    std::vector<llama_pos> pos;
    std::vector<llama_seq_id> seq;
    std::vector<int8_t> logits;

    void Read(const Napi::CallbackInfo & info, size_t i, int32_t nVocab) {
        Napi::Env env = info.Env();
        Napi::Object b = ArgObject(info, i, "batch");
        auto arr = [&](const char * k) -> Napi::Int32Array {
            Napi::Value v = b.Get(k);
            if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) ThrowTypeError(env, std::string("batch.") + k + " must be an Int32Array");
            return v.As<Napi::Int32Array>();
        };
        Napi::Int32Array t = arr("tokens"), p = arr("pos"), s = arr("seq");
        Napi::Value lv = b.Get("logits");
        if (!lv.IsTypedArray() || lv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) ThrowTypeError(env, "batch.logits must be a Uint8Array");
        Napi::Uint8Array l = lv.As<Napi::Uint8Array>();
        size_t n = t.ElementLength();
        if (n == 0) ThrowTypeError(env, "batch.tokens is empty");
        if (p.ElementLength() != n || s.ElementLength() != n || l.ElementLength() != n) ThrowTypeError(env, "batch arrays must have equal lengths");
        tokens.assign(t.Data(), t.Data() + n);
        pos.assign(p.Data(), p.Data() + n);
        seq.assign(s.Data(), s.Data() + n);
        logits.assign(l.Data(), l.Data() + n);
        for (size_t k = 0; k < n; k++) {
            if (tokens[k] < 0 || tokens[k] >= nVocab) ThrowTypeError(env, "token id " + std::to_string(tokens[k]) + " is outside the vocabulary");
            if (pos[k] < 0) ThrowTypeError(env, "positions must be >= 0");
        }
    }
};

// ---- decode(batch, abortFlag?) ------------------------------------------------------------
// Splits into n_batch slices. Only the final slice may request logits: llama.cpp keeps the
// outputs of the last llama_decode call only.
class DecodeWorker : public ContextWorker {
  public:
    DecodeWorker(const Napi::CallbackInfo & info, Context * self, ContextPtr h) : ContextWorker(info, self, h, 1) {
        in_.Read(info, 0, h_->nVocab);
        nBatch_ = (int32_t) llama_n_batch(h_->ctx.get());
        const size_t n = in_.tokens.size();
        const size_t lastStart = n == 0 ? 0 : ((n - 1) / nBatch_) * nBatch_;
        for (size_t k = 0; k < lastStart; k++) {
            if (in_.logits[k]) ThrowTypeError(info.Env(), "logits may only be requested within the last n_batch tokens of a decode");
        }
    }

  protected:
    void Run() override {
        SetCode("ERR_DECODE");
        auto t0 = std::chrono::steady_clock::now();
        const int32_t n = (int32_t) in_.tokens.size();
        llama_batch b = llama_batch_init(nBatch_, 0, 1);
        for (int32_t start = 0; start < n; start += nBatch_) {
            const int32_t m = std::min(nBatch_, n - start);
            b.n_tokens = m;
            for (int32_t k = 0; k < m; k++) {
                b.token[k] = in_.tokens[start + k];
                b.pos[k] = in_.pos[start + k];
                b.n_seq_id[k] = 1;
                b.seq_id[k][0] = in_.seq[start + k];
                b.logits[k] = in_.logits[start + k];
            }
            if (!DecodeBatch(b)) break;
        }
        llama_batch_free(b);
        ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    Napi::Value Result(Napi::Env env) override {
        Napi::Object o = Napi::Object::New(env);
        o.Set("ms", ms_);
        return o;
    }

  private:
    TokenBatchInput in_;
    int32_t nBatch_ = 0;
    double ms_ = 0;
};

Napi::Value Context::Decode(const Napi::CallbackInfo & info) {
    ContextPtr h = Ptr(info.Env(), "decode");
    return (new DecodeWorker(info, this, h))->Queue();
}

// ---- decodeEmbedding(embedding, seq, pos, abortFlag?) --------------------------------------
// Feeds projected image features as input embeddings at positions pos..pos+n-1, in n_batch
// slices (as mtmd_helper_decode_image_chunk does), without logits: a prompt always
// continues with text after the image.
class DecodeEmbeddingWorker : public ContextWorker {
  public:
    DecodeEmbeddingWorker(const Napi::CallbackInfo & info, Context * self, ContextPtr h) : ContextWorker(info, self, h, 3) {
        trimAfter_ = true;
        Napi::Env env = info.Env();
        emb_ = Embedding::Get(env, info[0]);
        seq_ = ArgInt(info, 1, "seq");
        pos_ = ArgInt(info, 2, "pos");
        if (pos_ < 0 || seq_ < 0) ThrowTypeError(env, "seq and pos must be >= 0");
        if (emb_->nEmbd != h_->nEmbd) {
            Throw(env, "ERR_MMPROJ_MISMATCH", "image embedding width " + std::to_string(emb_->nEmbd) +
                                                  " does not match the model's " + std::to_string(h_->nEmbd));
        }
    }

  protected:
    void Run() override {
        SetCode("ERR_DECODE");
        auto t0 = std::chrono::steady_clock::now();
        const int32_t nBatch = (int32_t) llama_n_batch(h_->ctx.get());
        const int32_t n = emb_->nTokens, d = emb_->nEmbd;
        // The batch points into the embedding instead of holding a copy (llama_decode only reads it):
        // a copy would be nBatch x n_embd floats (8 MB for 512 x 4096) at the moment of the question's
        // peak RSS. token is set aside so that llama_decode reads embd; both are put back for the free.
        llama_batch b = llama_batch_init(nBatch, 0, 1);
        llama_token * tokens = b.token;
        b.token = nullptr;
        for (int32_t start = 0; start < n; start += nBatch) {
            const int32_t m = std::min(nBatch, n - start);
            b.n_tokens = m;
            b.embd = const_cast<float *>(emb_->values.data()) + (size_t) start * d;
            for (int32_t k = 0; k < m; k++) {
                b.pos[k] = pos_ + start + k;
                b.n_seq_id[k] = 1;
                b.seq_id[k][0] = seq_;
                b.logits[k] = 0;
            }
            if (!DecodeBatch(b)) break;
        }
        b.token = tokens;
        b.embd = nullptr;
        llama_batch_free(b);
        ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    Napi::Value Result(Napi::Env env) override {
        Napi::Object o = Napi::Object::New(env);
        o.Set("ms", ms_);
        return o;
    }

  private:
    EmbeddingPtr emb_;
    int32_t seq_ = 0, pos_ = 0;
    double ms_ = 0;
};

Napi::Value Context::DecodeEmbedding(const Napi::CallbackInfo & info) {
    ContextPtr h = Ptr(info.Env(), "decodeEmbedding");
    return (new DecodeEmbeddingWorker(info, this, h))->Queue();
}

// ---- sample(samplers[], idxs: Int32Array) -------------------------------------------------
class SampleWorker : public ContextWorker {
  public:
    SampleWorker(const Napi::CallbackInfo & info, Context * self, ContextPtr h) : ContextWorker(info, self, h, 2) {
        Napi::Int32Array idx = ArgInt32Array(info, 1, "idxs");
        idxs_.assign(idx.Data(), idx.Data() + idx.ElementLength());
        samplers_.Bind(info.Env(), info[0], idxs_.size());
    }

  protected:
    void Run() override {
        SetCode("ERR_DECODE");
        for (int32_t i : idxs_) {
            if (llama_get_logits_ith(h_->ctx.get(), i) == nullptr) return Fail("ERR_INVALID_ARGUMENT", "no logits at batch index " + std::to_string(i));
        }
        SampleInto(out_, samplers_.chains, idxs_);
    }
    Napi::Value Result(Napi::Env env) override { return SampleToJs(env, out_); }

  private:
    std::vector<int32_t> idxs_;
    SamplerSet samplers_;
    SampleResult out_;
};

Napi::Value Context::Sample(const Napi::CallbackInfo & info) {
    ContextPtr h = Ptr(info.Env(), "sample");
    return (new SampleWorker(info, this, h))->Queue();
}

// ---- step(tokens, seqs, positions, samplers[], abortFlag?) ---------------------------------
// One generation step for one or many sequences: decode each sequence's last sampled token
// (all in one batch), then sample each sequence's next token from its own logits.
class StepWorker : public ContextWorker {
  public:
    StepWorker(const Napi::CallbackInfo & info, Context * self, ContextPtr h) : ContextWorker(info, self, h, 4) {
        Napi::Env env = info.Env();
        Napi::Int32Array t = ArgInt32Array(info, 0, "tokens"), s = ArgInt32Array(info, 1, "seqs"), p = ArgInt32Array(info, 2, "positions");
        size_t n = t.ElementLength();
        if (n == 0 || s.ElementLength() != n || p.ElementLength() != n) ThrowTypeError(env, "tokens, seqs and positions must be non-empty and of equal length");
        if ((int64_t) n > (int64_t) llama_n_batch(h_->ctx.get())) ThrowTypeError(env, "too many sequences for one step");
        tokens_.assign(t.Data(), t.Data() + n);
        seqs_.assign(s.Data(), s.Data() + n);
        pos_.assign(p.Data(), p.Data() + n);
        for (llama_token x : tokens_) if (x < 0 || x >= h_->nVocab) ThrowTypeError(env, "token id " + std::to_string(x) + " is outside the vocabulary");
        samplers_.Bind(env, info[3], n);
    }

  protected:
    void Run() override {
        SetCode("ERR_DECODE");
        auto t0 = std::chrono::steady_clock::now();
        const int32_t n = (int32_t) tokens_.size();
        llama_batch b = llama_batch_init(n, 0, 1);
        b.n_tokens = n;
        std::vector<int32_t> idxs(n);
        for (int32_t k = 0; k < n; k++) {
            b.token[k] = tokens_[k];
            b.pos[k] = pos_[k];
            b.n_seq_id[k] = 1;
            b.seq_id[k][0] = seqs_[k];
            b.logits[k] = 1;
            idxs[k] = k;
        }
        bool ok = DecodeBatch(b);
        llama_batch_free(b);
        if (!ok) return;
        SampleInto(out_, samplers_.chains, idxs);
        ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    Napi::Value Result(Napi::Env env) override {
        Napi::Object o = SampleToJs(env, out_);
        o.Set("ms", ms_);
        return o;
    }

  private:
    std::vector<llama_token> tokens_;
    std::vector<llama_seq_id> seqs_;
    std::vector<llama_pos> pos_;
    SamplerSet samplers_;
    SampleResult out_;
    double ms_ = 0;
};

Napi::Value Context::Step(const Napi::CallbackInfo & info) {
    ContextPtr h = Ptr(info.Env(), "step");
    return (new StepWorker(info, this, h))->Queue();
}

// ---- logits(idx) / logProbs(idxs, targets) -------------------------------------------------
class LogitsWorker : public ContextWorker {
  public:
    LogitsWorker(const Napi::CallbackInfo & info, Context * self, ContextPtr h, bool logProbs)
        : ContextWorker(info, self, h, logProbs ? 2 : 1), logProbs_(logProbs) {
        if (logProbs) {
            Napi::Int32Array i = ArgInt32Array(info, 0, "idxs"), t = ArgInt32Array(info, 1, "targets");
            if (i.ElementLength() != t.ElementLength()) ThrowTypeError(info.Env(), "idxs and targets must have equal lengths");
            idxs_.assign(i.Data(), i.Data() + i.ElementLength());
            targets_.assign(t.Data(), t.Data() + t.ElementLength());
            for (int32_t x : targets_) if (x < 0 || x >= h_->nVocab) ThrowTypeError(info.Env(), "target token outside the vocabulary");
        } else {
            idxs_.push_back(ArgInt(info, 0, "idx"));
        }
    }

  protected:
    void Run() override {
        const int32_t nv = h_->nVocab;
        for (size_t k = 0; k < idxs_.size(); k++) {
            const float * l = llama_get_logits_ith(h_->ctx.get(), idxs_[k]);
            if (l == nullptr) return Fail("ERR_INVALID_ARGUMENT", "no logits at batch index " + std::to_string(idxs_[k]));
            if (!logProbs_) {
                logits_.assign(l, l + nv);
                return;
            }
            // log-softmax in double: candidate scoring compares small differences.
            double mx = l[0];
            for (int32_t v = 1; v < nv; v++) mx = std::max(mx, (double) l[v]);
            double sum = 0;
            for (int32_t v = 0; v < nv; v++) sum += std::exp((double) l[v] - mx);
            out_.push_back((double) l[targets_[k]] - mx - std::log(sum));
        }
    }
    Napi::Value Result(Napi::Env env) override {
        if (!logProbs_) {
            Napi::Float32Array a = Napi::Float32Array::New(env, logits_.size());
            std::memcpy(a.Data(), logits_.data(), logits_.size() * sizeof(float));
            return a;
        }
        Napi::Float64Array a = Napi::Float64Array::New(env, out_.size());
        std::copy(out_.begin(), out_.end(), a.Data());
        return a;
    }

  private:
    bool logProbs_;
    std::vector<int32_t> idxs_, targets_;
    std::vector<float> logits_;
    std::vector<double> out_;
};

Napi::Value Context::Logits(const Napi::CallbackInfo & info) {
    ContextPtr h = Ptr(info.Env(), "logits");
    return (new LogitsWorker(info, this, h, false))->Queue();
}
Napi::Value Context::LogProbs(const Napi::CallbackInfo & info) {
    ContextPtr h = Ptr(info.Env(), "logProbs");
    return (new LogitsWorker(info, this, h, true))->Queue();
}

Napi::Object InitContext(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = Context::Define(env);
    GetAddonData(env)->contextCtor = Napi::Persistent(ctor);
    exports.Set("Context", ctor);
    exports.Set("createContext", Napi::Function::New(env, CreateContext, "createContext"));
    return exports;
}

}  // namespace lm
