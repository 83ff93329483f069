// Log bridge: llama.cpp, ggml and mtmd/clip log from any thread. Without a JS logger every
// line is dropped (a library never writes to stdout/stderr by itself); with one, whole lines
// are forwarded through a thread-safe function that does not keep the event loop alive.
//
// Independently of any logger, each thread keeps its last few warn/error lines (a ring per
// thread: llama.cpp logs on the thread that does the work, so a load that fails on a pool
// thread finds exactly its own reasons there, never another call's). Loaders put them in
// ERR_MODEL_LOAD / ERR_MMPROJ_LOAD messages.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "addon.h"
#include "common.h"
#include "ggml.h"
#include "llama.h"
#include "mtmd-helper.h"
#include "mtmd.h"

namespace lm {
namespace {

struct LogLine {
    int level;
    std::string text;
};

std::mutex g_mutex;
Napi::ThreadSafeFunction g_tsfn;
bool g_active = false;
int g_min_level = GGML_LOG_LEVEL_INFO;
std::string g_pending;     // a line being assembled from fragments
int g_pending_level = GGML_LOG_LEVEL_INFO;

const char * LevelName(int level) {
    switch (level) {
        case GGML_LOG_LEVEL_DEBUG: return "debug";
        case GGML_LOG_LEVEL_INFO: return "info";
        case GGML_LOG_LEVEL_WARN: return "warn";
        case GGML_LOG_LEVEL_ERROR: return "error";
        default: return "info";
    }
}

void Emit(int level, std::string text) {  // g_mutex held
    if (!g_active || level < g_min_level) return;
    auto * line = new LogLine{level, std::move(text)};
    napi_status st = g_tsfn.NonBlockingCall(line, [](Napi::Env env, Napi::Function fn, LogLine * l) {
        if (env != nullptr && !fn.IsEmpty()) {
            fn.Call({Napi::String::New(env, LevelName(l->level)), Napi::String::New(env, l->text)});
        }
        delete l;
    });
    if (st != napi_ok) delete line;
}

// This thread's recent warn/error lines (see the top of the file).
struct Capture {
    std::string pending;
    int pendingLevel = GGML_LOG_LEVEL_INFO;
    std::deque<std::string> lines;
};
thread_local Capture t_capture;

void CaptureText(int level, const char * text) {
    Capture & c = t_capture;
    if (level != GGML_LOG_LEVEL_CONT) {
        // A new message: whatever was left unterminated belongs to the previous one.
        c.pending.clear();
        c.pendingLevel = level;
    }
    if (c.pendingLevel < GGML_LOG_LEVEL_WARN) return;
    c.pending += text;
    if (c.pending.size() > 4096) c.pending.resize(4096);  // a runaway line without newline
    size_t nl;
    while ((nl = c.pending.find('\n')) != std::string::npos) {
        std::string line = c.pending.substr(0, nl);
        c.pending.erase(0, nl + 1);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (line.empty()) continue;
        c.lines.push_back(std::move(line));
        while (c.lines.size() > kLogCaptureLines) c.lines.pop_front();
    }
}

// ggml_abort's message, written where a dying process can still say why. Installing a callback
// also keeps ggml from forking gdb/lldb to print a backtrace: inside Node that attach can hang
// the process instead of ending it.
void AbortMessage(const char * message) {
    std::fprintf(stderr, "llava-med: fatal error in llama.cpp: %s\n", message ? message : "(no message)");
    std::fflush(stderr);
}

// ggml also installs a std::terminate handler that forks gdb for a backtrace: replaced the same way.
[[noreturn]] void Terminate() {
    std::fprintf(stderr, "llava-med: fatal error: an uncaught C++ exception in native code\n");
    std::fflush(stderr);
    std::abort();
}

void Callback(enum ggml_log_level level, const char * text, void * /*user*/) {
    if (text == nullptr) return;
    CaptureText(level, text);
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_active) return;
    int lv = level;
    // CONT continues the previous line (progress dots and the like).
    if (level != GGML_LOG_LEVEL_CONT) {
        g_pending_level = lv;
    }
    g_pending += text;
    size_t nl;
    while ((nl = g_pending.find('\n')) != std::string::npos) {
        std::string line = g_pending.substr(0, nl);
        g_pending.erase(0, nl + 1);
        if (!line.empty()) Emit(g_pending_level, std::move(line));
    }
}

void InstallCallbacks() {
    llama_log_set(Callback, nullptr);  // also sets ggml's logger
    mtmd_helper_log_set(Callback, nullptr);  // also sets mtmd/clip's logger
}

// setLogger(fn | null, minLevel)
Napi::Value SetLogger(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::string min = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "info";
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_active) {
        g_tsfn.Release();
        g_active = false;
    }
    g_pending.clear();
    g_min_level = min == "debug" ? GGML_LOG_LEVEL_DEBUG : min == "warn" ? GGML_LOG_LEVEL_WARN
                : min == "error" ? GGML_LOG_LEVEL_ERROR : GGML_LOG_LEVEL_INFO;
    if (info.Length() > 0 && info[0].IsFunction()) {
        g_tsfn = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "llava-med-log", 0, 1);
        g_tsfn.Unref(env);
        g_active = true;
    } else if (info.Length() > 0 && !info[0].IsNull() && !info[0].IsUndefined()) {
        ThrowTypeError(env, "logger must be a function or null");
    }
    return env.Undefined();
}

}  // namespace

void LogCaptureReset() {
    t_capture.pending.clear();
    t_capture.pendingLevel = GGML_LOG_LEVEL_INFO;
    t_capture.lines.clear();
}

std::vector<std::string> LogCaptureTake() {
    Capture & c = t_capture;
    std::vector<std::string> out(c.lines.begin(), c.lines.end());
    if (!c.pending.empty() && c.pendingLevel >= GGML_LOG_LEVEL_WARN) out.push_back(c.pending);  // unterminated
    if (out.size() > kLogCaptureLines) out.erase(out.begin(), out.end() - kLogCaptureLines);
    LogCaptureReset();
    return out;
}

std::string LogCaptureReason(const std::vector<std::string> & lines) {
    if (lines.empty()) return "llama.cpp logged no warning or error";
    std::string r;
    for (const std::string & l : lines) {
        if (!r.empty()) r += " | ";
        r += l;
    }
    return r;
}

void InitLog(Napi::Env env, Napi::Object exports) {
    InstallCallbacks();
    ggml_set_abort_callback(AbortMessage);
    std::set_terminate(Terminate);
    exports.Set("setLogger", Napi::Function::New(env, SetLogger, "setLogger"));
}

void ShutdownLog() {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_active) {
        g_tsfn.Release();
        g_active = false;
    }
}

}  // namespace lm
