#include "projector.h"

#include <chrono>
#include <cstring>

#include "mtmd-helper.h"
#include "options.h"

namespace lm {

// ---- Embedding ----------------------------------------------------------------------------

Napi::Function Embedding::Define(Napi::Env env) {
    return DefineClass(env, "Embedding", {
        InstanceAccessor<&Embedding::NTokens>("nTokens"),
        InstanceAccessor<&Embedding::NEmbd>("nEmbd"),
        InstanceAccessor<&Embedding::EncodeMs>("encodeMs"),
        InstanceMethod<&Embedding::ToFloat32Array>("toFloat32Array"),
        InstanceMethod<&Embedding::Dispose>("dispose"),
    });
}

Embedding::Embedding(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Embedding>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) ThrowTypeError(info.Env(), "Embedding cannot be constructed directly");
    data_ = *info[0].As<Napi::External<EmbeddingPtr>>().Data();
}

EmbeddingPtr Embedding::Get(Napi::Env env, Napi::Value v) {
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(GetAddonData(env)->embeddingCtor.Value())) {
        ThrowTypeError(env, "expected a native image Embedding");
    }
    Embedding * e = Napi::ObjectWrap<Embedding>::Unwrap(v.As<Napi::Object>());
    if (!e->data_) Throw(env, "ERR_DISPOSED", "the image embedding has been disposed");
    return e->data_;
}

Napi::Value Embedding::NTokens(const Napi::CallbackInfo & info) { return Napi::Number::New(info.Env(), data_ ? data_->nTokens : 0); }
Napi::Value Embedding::NEmbd(const Napi::CallbackInfo & info) { return Napi::Number::New(info.Env(), data_ ? data_->nEmbd : 0); }
Napi::Value Embedding::EncodeMs(const Napi::CallbackInfo & info) { return Napi::Number::New(info.Env(), data_ ? data_->encodeMs : 0); }

Napi::Value Embedding::ToFloat32Array(const Napi::CallbackInfo & info) {
    EmbeddingPtr d = Get(info.Env(), Value());
    Napi::Float32Array a = Napi::Float32Array::New(info.Env(), d->values.size());
    std::memcpy(a.Data(), d->values.data(), d->values.size() * sizeof(float));
    return a;
}

Napi::Value Embedding::Dispose(const Napi::CallbackInfo & info) {
    data_.reset();  // a plain vector: freeing it on this thread is cheap
    return info.Env().Undefined();
}

// ---- Projector ----------------------------------------------------------------------------

Napi::Function Projector::Define(Napi::Env env) {
    return DefineClass(env, "Projector", {
        InstanceMethod<&Projector::Encode>("encode"),
        InstanceMethod<&Projector::ImageTokenCount>("imageTokenCount"),
        InstanceMethod<&Projector::Info>("info"),
        InstanceMethod<&Projector::Dispose>("dispose"),
        InstanceAccessor<&Projector::IsDisposed>("disposed"),
    });
}

Projector::Projector(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Projector>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) ThrowTypeError(info.Env(), "Projector cannot be constructed directly; use loadProjector()");
    h_ = *info[0].As<Napi::External<HandlePtr>>().Data();
    data_ = GetAddonData(info.Env());
    data_->Register(this);
}

Projector::~Projector() {
    if (data_) data_->Unregister(this);
}

void Projector::ReleaseAtExit() {
    if (!busy_.Busy()) h_.reset();
}

Projector::HandlePtr Projector::Ptr(Napi::Env env, const char * what) const {
    if (!h_) Throw(env, "ERR_DISPOSED", std::string(what) + ": the projector has been disposed");
    return h_;
}

Napi::Value Projector::IsDisposed(const Napi::CallbackInfo & info) { return Napi::Boolean::New(info.Env(), !h_); }

Napi::Value Projector::Info(const Napi::CallbackInfo & info) {
    HandlePtr h = Ptr(info.Env(), "info");
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("supportVision", mtmd_support_vision(h->ctx.get()));
    o.Set("nEmbd", llama_model_n_embd_inp(h->model.get()));
    o.Set("useMrope", mtmd_decode_use_mrope(h->ctx.get()));
    return o;
}

// loadProjector(model, path, { threads, useGpu, warmup, flashAttn }, abortFlag?) (native/options.h)
class LoadProjectorWorker : public PromiseWorker {
  public:
    LoadProjectorWorker(const Napi::CallbackInfo & info) : PromiseWorker(info.Env()) {
        trimAfter_ = true;
        computeThread_ = true;  // the warm-up encode
        Napi::Env env = info.Env();
        model_ = Model::FromValue(env, info[0])->Ptr(env, "loadProjector");
        path_ = ArgString(info, 1, "path");
        Napi::Object o = ArgObject(info, 2, "options");
        ProjectorOptions opt = ReadProjectorOptions(o);
        params_ = mtmd_context_params_default();
        params_.use_gpu = opt.useGpu;
        params_.n_threads = opt.threads;
        params_.warmup = opt.warmup;
        // Explicit: mtmd's default is AUTO, which on CPU turns flash attention on with F16 K/V.
        params_.flash_attn_type = opt.flashAttn;
        params_.print_timings = false;
        if (info.Length() > 3) abort_.Bind(info[3]);
        params_.progress_callback = [](float, void * ud) -> bool {
            return !static_cast<LoadProjectorWorker *>(ud)->abort_.Aborted();
        };
        params_.progress_callback_user_data = this;
    }

  protected:
    void Run() override {
        if (abort_.Aborted()) return Fail("ERR_ABORTED", "projector load aborted");
        SetCode("ERR_MMPROJ_LOAD");
        auto t0 = std::chrono::steady_clock::now();
        LogCaptureReset();
        mtmd_context * ctx = mtmd_init_from_file(path_.c_str(), model_.get(), params_);
        loadMs_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (ctx == nullptr) {
            if (abort_.Aborted()) return Fail("ERR_ABORTED", "projector load aborted");
            log_ = LogCaptureTake();
            return Fail("ERR_MMPROJ_LOAD", "mtmd could not load the projector from " + path_ + ": " + LogCaptureReason(log_));
        }
        LogCaptureReset();
        h_ = std::make_shared<Projector::Handle>();
        h_->model = model_;
        h_->ctx.reset(ctx);
        if (!mtmd_support_vision(ctx)) {
            h_.reset();
            return Fail("ERR_MMPROJ_LOAD", path_ + " has no vision encoder");
        }
    }
    Napi::Value Result(Napi::Env env) override {
        Napi::Object o = GetAddonData(env)->projectorCtor.New({Napi::External<Projector::HandlePtr>::New(env, &h_)});
        o.Set("loadMs", loadMs_);
        return o;
    }

  private:
    ModelPtr model_;
    std::string path_;
    mtmd_context_params params_;
    Projector::HandlePtr h_;
    double loadMs_ = 0;
};

static Napi::Value LoadProjector(const Napi::CallbackInfo & info) {
    return (new LoadProjectorWorker(info))->Queue();
}

// Tokenizes one image with mtmd's marker and returns the image chunk. The bitmap is already
// at the encoder's size (lib/image did the preprocessing), so mtmd's resize is a copy.
static int32_t TokenizeImage(mtmd_context * ctx, const mtmd_bitmap * bmp, mtmd_input_chunks * chunks,
                             const mtmd_input_chunk ** out) {
    mtmd_input_text text;
    text.text = mtmd_default_marker();
    text.text_len = std::strlen(text.text);
    text.add_special = false;
    text.parse_special = true;
    const mtmd_bitmap * bitmaps[] = {bmp};
    int32_t r = mtmd_tokenize(ctx, chunks, &text, bitmaps, 1);
    if (r != 0) return r;
    *out = nullptr;
    for (size_t i = 0; i < mtmd_input_chunks_size(chunks); i++) {
        const mtmd_input_chunk * c = mtmd_input_chunks_get(chunks, i);
        if (mtmd_input_chunk_get_type(c) == MTMD_INPUT_CHUNK_TYPE_IMAGE) *out = c;
    }
    return *out ? 0 : -1;
}

class EncodeWorker : public PromiseWorker {
  public:
    EncodeWorker(const Napi::CallbackInfo & info, Projector * self, Projector::HandlePtr h)
        : PromiseWorker(info.Env()), lease_(self->Value(), &self->busy_, "projector"), h_(std::move(h)) {
        trimAfter_ = true;
        computeThread_ = true;
        Napi::Env env = info.Env();
        if (info.Length() < 1 || !info[0].IsTypedArray()) ThrowTypeError(env, "rgb must be a Uint8Array");
        Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
        if (ta.TypedArrayType() != napi_uint8_array) ThrowTypeError(env, "rgb must be a Uint8Array");
        width_ = ArgInt(info, 1, "width");
        height_ = ArgInt(info, 2, "height");
        if (width_ <= 0 || height_ <= 0 || (size_t) width_ * height_ * 3 != ta.ByteLength()) {
            ThrowTypeError(env, "rgb must hold width*height*3 bytes");
        }
        Napi::Uint8Array u8 = info[0].As<Napi::Uint8Array>();
        rgb_.assign(u8.Data(), u8.Data() + u8.ByteLength());
        if (info.Length() > 3) abort_.Bind(info[3]);
    }

  protected:
    void Run() override {
        if (abort_.Aborted()) return Fail("ERR_ABORTED", "image encode aborted");
        SetCode("ERR_ENCODE");
        mtmd_context * ctx = h_->ctx.get();
        std::unique_ptr<mtmd_bitmap, decltype(&mtmd_bitmap_free)> bmp(mtmd_bitmap_init(width_, height_, rgb_.data()), mtmd_bitmap_free);
        std::unique_ptr<mtmd_input_chunks, decltype(&mtmd_input_chunks_free)> chunks(mtmd_input_chunks_init(), mtmd_input_chunks_free);
        if (!bmp || !chunks) return Fail("ERR_ENCODE", "out of memory creating the image bitmap");
        const mtmd_input_chunk * chunk = nullptr;
        int32_t r = TokenizeImage(ctx, bmp.get(), chunks.get(), &chunk);
        if (r != 0) return Fail("ERR_ENCODE", "mtmd could not preprocess the image (code " + std::to_string(r) + ")");
        auto t0 = std::chrono::steady_clock::now();
        // ggml polls this between the vision graph's nodes (native/patches/0003): an abort
        // stops the encode within one node instead of after the whole encoder.
        mtmd_set_abort_callback(ctx, [](void * ud) { return static_cast<EncodeWorker *>(ud)->abort_.Aborted(); }, this);
        r = mtmd_encode_chunk(ctx, chunk);
        mtmd_set_abort_callback(ctx, nullptr, nullptr);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (r != 0 && abort_.Aborted()) return Fail("ERR_ABORTED", "image encode aborted");
        if (r != 0) return Fail("ERR_ENCODE", "image encode failed (code " + std::to_string(r) + ")");
        auto out = std::make_shared<EmbeddingData>();
        out->nTokens = (int32_t) mtmd_input_chunk_get_n_tokens(chunk);
        out->nEmbd = llama_model_n_embd_inp(h_->model.get());
        const float * embd = mtmd_get_output_embd(ctx);
        out->values.assign(embd, embd + (size_t) out->nTokens * out->nEmbd);
        out->encodeMs = ms;
        result_ = out;
    }
    Napi::Value Result(Napi::Env env) override {
        return GetAddonData(env)->embeddingCtor.New({Napi::External<EmbeddingPtr>::New(env, &result_)});
    }

  private:
    BusyLease lease_;
    Projector::HandlePtr h_;
    std::vector<unsigned char> rgb_;
    int32_t width_ = 0, height_ = 0;
    EmbeddingPtr result_;
};

// encode(rgb: Uint8Array, width, height, abortFlag?) -> Embedding
Napi::Value Projector::Encode(const Napi::CallbackInfo & info) {
    HandlePtr h = Ptr(info.Env(), "encode");
    return (new EncodeWorker(info, this, h))->Queue();
}

class TokenCountWorker : public PromiseWorker {
  public:
    TokenCountWorker(Napi::Env env, Projector::HandlePtr h, int32_t w, int32_t hh)
        : PromiseWorker(env), h_(std::move(h)), w_(w), hh_(hh) {}

  protected:
    void Run() override {
        std::unique_ptr<mtmd_bitmap, decltype(&mtmd_bitmap_free)> bmp(mtmd_bitmap_init(w_, hh_, nullptr), mtmd_bitmap_free);
        std::unique_ptr<mtmd_input_chunks, decltype(&mtmd_input_chunks_free)> chunks(mtmd_input_chunks_init(), mtmd_input_chunks_free);
        const mtmd_input_chunk * chunk = nullptr;
        if (!bmp || TokenizeImage(h_->ctx.get(), bmp.get(), chunks.get(), &chunk) != 0) {
            return Fail("ERR_ENCODE", "could not count image tokens");
        }
        n_ = (int32_t) mtmd_input_chunk_get_n_tokens(chunk);
    }
    Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, n_); }

  private:
    Projector::HandlePtr h_;
    int32_t w_, hh_, n_ = 0;
};

// imageTokenCount(width, height) -> number (tokenizes a placeholder bitmap; no encode)
Napi::Value Projector::ImageTokenCount(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    HandlePtr h = Ptr(env, "imageTokenCount");
    BusyLease check(Value(), &busy_, "projector");  // mtmd_tokenize must not overlap an encode
    int32_t w = ArgInt(info, 0, "width"), hh = ArgInt(info, 1, "height");
    if (w <= 0 || hh <= 0) ThrowTypeError(env, "width and height must be positive");
    return (new TokenCountWorker(env, h, w, hh))->Queue();
}

Napi::Value Projector::Dispose(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (busy_.Busy()) Throw(env, "ERR_BUSY", "the projector is busy; wait for the running call before dispose()");
    std::shared_ptr<void> victim = std::move(h_);
    h_.reset();
    return QueueRelease(env, std::move(victim));
}

Napi::Object InitProjector(Napi::Env env, Napi::Object exports) {
    AddonData * d = GetAddonData(env);
    Napi::Function p = Projector::Define(env);
    d->projectorCtor = Napi::Persistent(p);
    Napi::Function e = Embedding::Define(env);
    d->embeddingCtor = Napi::Persistent(e);
    exports.Set("Projector", p);
    exports.Set("Embedding", e);
    exports.Set("loadProjector", Napi::Function::New(env, LoadProjector, "loadProjector"));
    return exports;
}

}  // namespace lm
