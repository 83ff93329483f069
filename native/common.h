// Shared plumbing for the addon: typed errors, abort flags, busy guards, the promise worker.
// Policy (prompts, defaults, validation messages) lives in TypeScript; this layer only
// re-checks argument types and never trusts a handle.
#pragma once

#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace lm {

// A JS Error carrying a stable `code`; lib/engine maps it to LlavaMedError.
inline Napi::Error MakeError(Napi::Env env, const std::string & code, const std::string & msg) {
    Napi::Error e = Napi::Error::New(env, msg);
    e.Set("code", Napi::String::New(env, code));
    return e;
}

[[noreturn]] inline void Throw(Napi::Env env, const char * code, const std::string & msg) {
    throw MakeError(env, code, msg);
}

[[noreturn]] inline void ThrowTypeError(Napi::Env env, const std::string & msg) {
    Napi::TypeError e = Napi::TypeError::New(env, msg);
    e.Set("code", Napi::String::New(env, "ERR_INVALID_ARGUMENT"));
    throw e;
}

// Argument re-checks: TypeScript validates first, these keep a wrong call from crashing.
inline int32_t ArgInt(const Napi::CallbackInfo & info, size_t i, const char * name) {
    if (info.Length() <= i || !info[i].IsNumber()) ThrowTypeError(info.Env(), std::string(name) + " must be a number");
    return info[i].As<Napi::Number>().Int32Value();
}
inline double ArgNumber(const Napi::CallbackInfo & info, size_t i, const char * name) {
    if (info.Length() <= i || !info[i].IsNumber()) ThrowTypeError(info.Env(), std::string(name) + " must be a number");
    return info[i].As<Napi::Number>().DoubleValue();
}
inline std::string ArgString(const Napi::CallbackInfo & info, size_t i, const char * name) {
    if (info.Length() <= i || !info[i].IsString()) ThrowTypeError(info.Env(), std::string(name) + " must be a string");
    return info[i].As<Napi::String>().Utf8Value();
}
inline bool ArgBool(const Napi::CallbackInfo & info, size_t i, const char * name) {
    if (info.Length() <= i || !info[i].IsBoolean()) ThrowTypeError(info.Env(), std::string(name) + " must be a boolean");
    return info[i].As<Napi::Boolean>().Value();
}
inline Napi::Object ArgObject(const Napi::CallbackInfo & info, size_t i, const char * name) {
    if (info.Length() <= i || !info[i].IsObject()) ThrowTypeError(info.Env(), std::string(name) + " must be an object");
    return info[i].As<Napi::Object>();
}
inline Napi::Int32Array ArgInt32Array(const Napi::CallbackInfo & info, size_t i, const char * name) {
    if (info.Length() <= i || !info[i].IsTypedArray() ||
        info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
        ThrowTypeError(info.Env(), std::string(name) + " must be an Int32Array");
    }
    return info[i].As<Napi::Int32Array>();
}
inline double OptNumber(Napi::Object o, const char * key, double def) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return def;
    if (!v.IsNumber()) ThrowTypeError(o.Env(), std::string(key) + " must be a number");
    return v.As<Napi::Number>().DoubleValue();
}
inline bool OptBool(Napi::Object o, const char * key, bool def) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return def;
    if (!v.IsBoolean()) ThrowTypeError(o.Env(), std::string(key) + " must be a boolean");
    return v.As<Napi::Boolean>().Value();
}
inline std::string OptString(Napi::Object o, const char * key, const std::string & def) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) return def;
    if (!v.IsString()) ThrowTypeError(o.Env(), std::string(key) + " must be a string");
    return v.As<Napi::String>().Utf8Value();
}

// An abort flag is an Int32Array(1) owned by TypeScript: it writes 1 when the caller's
// AbortSignal fires, and the worker thread polls it (model-load progress, ggml's abort
// callback between graph nodes, between tokens). The worker keeps a reference so the
// memory stays alive while it runs.
class AbortFlag {
  public:
    AbortFlag() = default;
    void Bind(Napi::Value v) {
        if (v.IsUndefined() || v.IsNull()) return;
        if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
            v.As<Napi::Int32Array>().ElementLength() < 1) {
            ThrowTypeError(v.Env(), "abort flag must be an Int32Array of length >= 1");
        }
        Napi::Int32Array a = v.As<Napi::Int32Array>();
        ref_ = Napi::Persistent(a.As<Napi::Object>());
        ptr_ = a.Data();
    }
    bool Aborted() const {
        if (ptr_ == nullptr) return false;
#if defined(__GNUC__) || defined(__clang__)
        return __atomic_load_n(ptr_, __ATOMIC_RELAXED) != 0;
#else
        return *static_cast<volatile int32_t *>(ptr_) != 0;
#endif
    }

  private:
    Napi::ObjectReference ref_;
    int32_t * ptr_ = nullptr;
};

// One operation at a time per native object. TypeScript queues calls (FIFO); this is the
// backstop that turns a second concurrent call into ERR_BUSY instead of a data race.
class BusyFlag {
  public:
    bool TryAcquire() {
        bool expected = false;
        return busy_.compare_exchange_strong(expected, true);
    }
    void Release() { busy_.store(false); }
    bool Busy() const { return busy_.load(); }

  private:
    std::atomic<bool> busy_{false};
};

class BusyLease {
  public:
    BusyLease() = default;
    // `owner` is the JS object that owns `flag`: holding a reference keeps it from being
    // garbage-collected (and the flag freed) while the worker runs.
    BusyLease(Napi::Object owner, BusyFlag * flag, const char * what) {
        if (!flag->TryAcquire()) {
            Throw(owner.Env(), "ERR_BUSY", std::string(what) + " is busy with another operation; wait for it to finish");
        }
        flag_ = flag;
        owner_ = Napi::Persistent(owner);
    }
    BusyLease(const BusyLease &) = delete;
    BusyLease & operator=(const BusyLease &) = delete;
    ~BusyLease() { if (flag_) flag_->Release(); }

  private:
    BusyFlag * flag_ = nullptr;
    Napi::ObjectReference owner_;
};

// Base class for every blocking call: runs Run() on the libuv thread pool and settles a
// Promise. Errors carry a code; C++ exceptions from llama.cpp are caught and become
// ERR_NATIVE so they never unwind into Node.
// Returns freed heap pages of every malloc arena to the OS (glibc only; elsewhere a no-op).
inline void ReleaseFreedHeap() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

// The one thread that runs every ggml graph of the process (decode, image encode, the projector's
// warm-up). With OpenMP, ggml's CPU threads are the OpenMP team of the thread that calls the
// compute, and each calling thread gets its own team: run from whichever libuv worker picked the
// call, a process soon held several teams, more threads than CPUs, and libgomp then stops its
// workers spinning at barriers (they sleep: ~6,900 context switches per served request against
// ~450 for llama-server, and about one core's worth of work on two). One calling thread keeps one
// team, as llama.cpp's own tools have. The libuv worker that took the call waits for it, so the
// pool and the promise settle exactly as before; graphs of different instances run one after the
// other (on the same cores they would only contend).
class ComputeThread {
  public:
    // Runs fn on the compute thread and returns when it is done. fn must not throw.
    static void Run(const std::function<void()> & fn) { Get().RunTask(fn); }

  private:
    // Never destroyed: the thread may be inside a graph when the process exits, as the libuv
    // workers may.
    static ComputeThread & Get() {
        static ComputeThread * t = new ComputeThread();
        return *t;
    }
    ComputeThread() {
        std::thread([this] { Loop(); }).detach();
    }
    struct Task {
        const std::function<void()> * fn;
        bool done = false;
    };
    void RunTask(const std::function<void()> & fn) {
        Task task{&fn};
        std::unique_lock<std::mutex> lock(mu_);
        queue_.push_back(&task);
        cv_.notify_all();
        done_cv_.wait(lock, [&] { return task.done; });
    }
    void Loop() {
        for (;;) {
            Task * task;
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [&] { return !queue_.empty(); });
                task = queue_.front();
                queue_.pop_front();
            }
            (*task->fn)();
            {
                std::lock_guard<std::mutex> lock(mu_);
                task->done = true;
            }
            done_cv_.notify_all();
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::condition_variable done_cv_;
    std::deque<Task *> queue_;
};

class PromiseWorker : public Napi::AsyncWorker {
  public:
    explicit PromiseWorker(Napi::Env env)
        : Napi::AsyncWorker(env, "llava-med"), deferred_(Napi::Promise::Deferred::New(env)) {}
    Napi::Promise Queue() {
        Napi::Promise p = deferred_.Promise();
        Napi::AsyncWorker::Queue();
        return p;
    }

  protected:
    virtual void Run() = 0;
    virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

    // Names the error code an exception escaping the next steps should carry.
    void SetCode(const char * code) { code_ = code; }

    void Fail(const char * code, const std::string & msg) {
        code_ = code;
        SetError(msg);
    }

    AbortFlag abort_;

    // llama.cpp's log lines that explain a failure; a rejection carries them as `log` (an array
    // of strings), so the TS error's `cause.log` holds them.
    std::vector<std::string> log_;

    void Execute() override {
        auto body = [this] {
            try {
                Run();
            } catch (const std::exception & e) {
                SetError(e.what());  // keeps the code set by the step that was running
            } catch (...) {
                SetError("unknown native exception");
            }
        };
        if (computeThread_) ComputeThread::Run(body);
        else body();
        if (trimAfter_) ReleaseFreedHeap();
    }

    // Workers that run ggml graphs set this: Run() then executes on the ComputeThread.
    bool computeThread_ = false;

    // Workers that allocate and free large temporaries (load, encode, free) set this so the
    // freed memory goes back to the OS: each libuv thread has its own glibc arena, and freed
    // chunks in a thread arena stay resident until trimmed, unlike one process heap reused by
    // every phase in a single-threaded tool.
    bool trimAfter_ = false;

  private:
    // Settling can fail when the environment is going away (a worker thread terminated while
    // this call ran): nothing may escape, or std::terminate takes the whole process down.
    void OnOK() override {
        Napi::Env env = Env();
        try {
            deferred_.Resolve(Result(env));
        } catch (const Napi::Error & e) {
            try {
                deferred_.Reject(e.Value());
            } catch (...) {
            }
        } catch (...) {
        }
    }
    void OnError(const Napi::Error & e) override {
        try {
            Napi::Error err = MakeError(Env(), code_, e.Message());
            if (!log_.empty()) {
                Napi::Array a = Napi::Array::New(Env(), log_.size());
                for (size_t i = 0; i < log_.size(); i++) a.Set(i, Napi::String::New(Env(), log_[i]));
                err.Set("log", a);
            }
            deferred_.Reject(err.Value());
        } catch (...) {
        }
    }

    Napi::Promise::Deferred deferred_;
    std::string code_ = "ERR_NATIVE";
};

}  // namespace lm
