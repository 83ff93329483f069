#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "addon.h"
#include "common.h"
#include "llama.h"

namespace lm {

using ModelPtr = std::shared_ptr<llama_model>;

// One llama_model. Contexts and projectors hold their own shared_ptr, so the weights are
// freed only after the last user is gone, whatever order JS disposes things in.
class Model : public Napi::ObjectWrap<Model>, public Disposable {
  public:
    static Napi::Function Define(Napi::Env env);
    explicit Model(const Napi::CallbackInfo & info);
    ~Model() override;

    // Throws ERR_DISPOSED / ERR_INVALID_ARGUMENT when v is not a live Model.
    static Model * FromValue(Napi::Env env, Napi::Value v);
    ModelPtr Ptr(Napi::Env env, const char * what) const;

    void ReleaseAtExit() override;

  private:
    friend class LoadModelWorker;
    Napi::Value Info(const Napi::CallbackInfo & info);
    Napi::Value Tokenize(const Napi::CallbackInfo & info);
    Napi::Value Detokenize(const Napi::CallbackInfo & info);
    Napi::Value TokenPieces(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);
    Napi::Value IsDisposed(const Napi::CallbackInfo & info);

    ModelPtr model_;
    Napi::ObjectReference info_;
    AddonData * data_ = nullptr;
};

// Text of a token as bytes (a piece may be half of a UTF-8 sequence).
std::string TokenPiece(const llama_vocab * vocab, llama_token tok, bool special);

}  // namespace lm
