// preprocessImage(samples, spec) -> Promise<Buffer>: the pixel half of lib/image (decoding stays
// in sharp). Pillow's convert('RGB') for the modes sharp hands us, then LLaVA-Med's geometry:
// v0 = CLIPImageProcessor (shortest edge to imageSize with Pillow's BICUBIC, centre crop), v1.5 =
// expand2square then the same. Bit-exact with Pillow 9.4 (test/image/pillow-parity.test.ts).
//
// Why native: these loops used to be TypeScript in a worker thread, which kept a second V8
// isolate (with its own sharp) resident and spent background V8 time competing with the image
// encoder on small machines (lib/image/native.ts has the measurements). Here they are one
// AsyncWorker on the libuv pool: no isolate, and no pixel loop on the event loop.
//
// spec: { width, height, channels, depth: 8 | 16, convert: 'rgb' | 'high16' | 'clip16' | 'cmyk',
//         geometry: 'none' | 'v0' | 'v1.5', imageSize (v0, v1.5), pad: [r, g, b] (v1.5) }
// 16-bit samples are native-endian uint16 (what sharp's raw({ depth: 'ushort' }) returns). The
// result is RGB: width*height*3 bytes for 'none', imageSize*imageSize*3 otherwise.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "addon.h"
#include "common.h"

// The resampler's weights must round exactly as Pillow's (and JavaScript's) separate multiply
// and add do: a fused multiply-add in bicubic() would move some weights by one fixed-point unit.
// GCC contracts across statements in its default GNU mode, and clang within expressions, on any
// target with FMA (every arm64 and x86-64-v3 build).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#elif defined(_MSC_VER)
#pragma fp_contract(off)
#endif

namespace lm {

namespace {

enum class Convert { Rgb, High16, Clip16, Cmyk };
enum class Geometry { None, V0, V15 };

constexpr int kMaxImageSize = 4096;
// Largest working set (intermediate image + weights) one call may allocate. A sane image needs a
// few MB; only extreme aspect ratios (a 1 x 10^7 strip padded to a square) come near this.
constexpr uint64_t kMaxWorkBytes = uint64_t(2) << 30;

// ---- Pillow convert('RGB'), one source row at a time ---------------------------------------

struct Source {
    const uint8_t * u8 = nullptr;   // depth 8
    const uint16_t * u16 = nullptr; // depth 16
    int64_t width = 0, height = 0;
    int channels = 0;
    Convert convert = Convert::Rgb;

    // Row y as RGB into out (width*3 bytes): keep the first 3 channels, replicate grey (1-2
    // channels), drop alpha without compositing; 16-bit 'high16' keeps v >> 8 (Pillow's I;16 ->
    // L / RGB;16 -> RGB), 'clip16' clips at 255 (mode 'I' -> RGB); 'cmyk' is Convert.c cmyk2rgb.
    void Row(int64_t y, uint8_t * out) const {
        const size_t c = (size_t) channels;
        const size_t n = (size_t) width;
        const bool grey = channels <= 2;
        switch (convert) {
            case Convert::Rgb: {
                const uint8_t * p = u8 + (size_t) y * n * c;
                for (size_t i = 0; i < n; i++, p += c, out += 3) {
                    if (grey) {
                        out[0] = out[1] = out[2] = p[0];
                    } else {
                        out[0] = p[0];
                        out[1] = p[1];
                        out[2] = p[2];
                    }
                }
                break;
            }
            case Convert::High16:
            case Convert::Clip16: {
                const bool clip = convert == Convert::Clip16;
                auto map = [clip](uint16_t v) -> uint8_t { return clip ? (uint8_t) (v > 255 ? 255 : v) : (uint8_t) (v >> 8); };
                const uint16_t * p = u16 + (size_t) y * n * c;
                for (size_t i = 0; i < n; i++, p += c, out += 3) {
                    if (grey) {
                        out[0] = out[1] = out[2] = map(p[0]);
                    } else {
                        out[0] = map(p[0]);
                        out[1] = map(p[1]);
                        out[2] = map(p[2]);
                    }
                }
                break;
            }
            case Convert::Cmyk: {
                // MULDIV255(a, b) = ((t >> 8) + t) >> 8 with t = a * b + 128; no ICC, like Pillow.
                const uint8_t * p = u8 + (size_t) y * n * c;
                for (size_t i = 0; i < n; i++, p += c, out += 3) {
                    const int nk = 255 - p[3];
                    for (int k = 0; k < 3; k++) {
                        const int t = p[k] * nk + 128;
                        const int v = nk - (((t >> 8) + t) >> 8);
                        out[k] = (uint8_t) (v < 0 ? 0 : v);
                    }
                }
                break;
            }
        }
    }
};

// The converted source pasted at (x0, y0) on a cw x ch canvas of the pad colour: expand2square
// for v1.5, the bare image for v0. Rows are produced on demand, so the square canvas (which for
// a 4000x3000 photo is 48 MB) never exists.
class Canvas {
  public:
    Canvas(const Source & src, int64_t cw, int64_t ch, int64_t x0, int64_t y0, const uint8_t pad[3])
        : src_(src), cw_(cw), ch_(ch), x0_(x0), y0_(y0), scratch_((size_t) cw * 3) {
        for (size_t i = 0; i < scratch_.size(); i += 3) std::memcpy(&scratch_[i], pad, 3);
        if (ch_ > src_.height) padRow_ = scratch_;
    }
    int64_t Width() const { return cw_; }
    int64_t Height() const { return ch_; }
    bool IsPad(int64_t y) const { return y < y0_ || y >= y0_ + src_.height; }
    // Canvas row y, cw*3 bytes, valid until the next call.
    const uint8_t * Row(int64_t y) {
        if (IsPad(y)) return padRow_.data();
        // The pad columns of scratch_ are written once, in the constructor; only the image's part changes.
        src_.Row(y - y0_, scratch_.data() + (size_t) x0_ * 3);
        return scratch_.data();
    }

  private:
    const Source & src_;
    int64_t cw_, ch_, x0_, y0_;
    std::vector<uint8_t> scratch_;
    std::vector<uint8_t> padRow_;
};

// ---- Pillow's ImagingResample (Resample.c) with BICUBIC, 8 bits per channel --------------
//
// Why not sharp's resize: libvips' reduce/affine kernels use another fixed-point precision, other
// pixel-centre conventions and (for 'cubic') a different filter, so the CLIP input would drift
// from what LLaVA-Med was trained and evaluated on. The algorithm is small and unchanged since
// Pillow 4.x, so it is reproduced here literally.

constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kOne = double(1 << kPrecisionBits);
constexpr int64_t kHalf = int64_t(1) << (kPrecisionBits - 1);

double Bicubic(double x) {
    const double a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

struct Coeffs {
    size_t ksize = 0;
    std::vector<int64_t> first;  // first input index of each output index
    std::vector<int64_t> count;  // input indices it uses
    std::vector<int32_t> k;      // fixed-point weights, ksize per output index
};

size_t CoeffBytes(int64_t inSize, int64_t outSize, int64_t n) {
    const double scale = (double) inSize / (double) outSize;
    const double support = 2.0 * (scale < 1 ? 1 : scale);
    return (size_t) n * ((size_t) std::ceil(support) * 2 + 1) * (sizeof(int32_t) + sizeof(double)) + (size_t) n * 16;
}

// precompute_coeffs + normalize_coeffs_8bpc for output indices [start, start + n) of an
// inSize -> outSize axis: bicubic a = -0.5, support 2 widened by the downscale factor
// (antialiasing), taps from int(center - support + 0.5) to int(center + support + 0.5), weights
// normalised to sum 1 in double, then rounded half away from zero to PRECISION_BITS fixed point.
Coeffs Coefficients(int64_t inSize, int64_t outSize, int64_t start, int64_t n) {
    const double support0 = 2.0;
    const double scale = (double) inSize / (double) outSize;
    const double filterscale = scale < 1 ? 1 : scale;
    const double support = support0 * filterscale;
    Coeffs c;
    c.ksize = (size_t) std::ceil(support) * 2 + 1;
    c.first.resize((size_t) n);
    c.count.resize((size_t) n);
    c.k.assign((size_t) n * c.ksize, 0);
    std::vector<double> w(c.ksize);
    const double ss = 1.0 / filterscale;
    for (int64_t i = 0; i < n; i++) {
        const double center = ((double) (start + i) + 0.5) * scale;
        // C's (int) cast truncates toward zero, as Pillow's does.
        int64_t xmin = (int64_t) std::trunc(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int64_t xmax = (int64_t) std::trunc(center + support + 0.5);
        if (xmax > inSize) xmax = inSize;
        xmax -= xmin;
        double ww = 0;
        for (int64_t x = 0; x < xmax; x++) {
            const double v = Bicubic(((double) (x + xmin) - center + 0.5) * ss);
            w[(size_t) x] = v;
            ww += v;
        }
        int32_t * k = &c.k[(size_t) i * c.ksize];
        for (int64_t x = 0; x < xmax; x++) {
            const double v = ww != 0 ? w[(size_t) x] / ww : w[(size_t) x];
            k[x] = (int32_t) (v < 0 ? std::trunc(-0.5 + v * kOne) : std::trunc(0.5 + v * kOne));
        }
        c.first[(size_t) i] = xmin;
        c.count[(size_t) i] = xmax;
    }
    return c;
}

// The sum is exact in 64 bits (Pillow's int32 never overflows for 8-bit input either);
// floor(ss / 2^PRECISION_BITS) clipped to 0..255.
inline uint8_t Clip8(int64_t ss) {
    if (ss < 0) return 0;
    const int64_t v = ss >> kPrecisionBits;
    return (uint8_t) (v > 255 ? 255 : v);
}

struct Window {
    int64_t left, top, width, height;
};

// Resizes the canvas to outW x outH with Pillow's BICUBIC and returns only `win` of the result
// (win.width x win.height RGB). Horizontal pass first, rounded and clipped to uint8, then the
// vertical pass over that; a pass whose size does not change is skipped. Each output pixel
// depends only on its own row/column taps, so computing the window alone gives the same bytes as
// resizing fully and cropping (CLIPImageProcessor's centre crop).
std::vector<uint8_t> Resize(Canvas & canvas, int64_t outW, int64_t outH, const Window & win) {
    const int64_t srcW = canvas.Width(), srcH = canvas.Height();
    const bool needH = outW != srcW;
    const bool needV = outH != srcH;
    const size_t width = (size_t) win.width, height = (size_t) win.height;

    // Rows of the (horizontally resized) image the vertical pass reads.
    Coeffs vc;
    int64_t rowFirst = win.top, rowEnd = win.top + win.height;
    if (needV) {
        vc = Coefficients(srcH, outH, win.top, win.height);
        rowFirst = vc.first[0];
        rowEnd = vc.first[height - 1] + vc.count[height - 1];
    }
    const size_t rows = (size_t) (rowEnd - rowFirst);
    const size_t stride = width * 3;

    // Horizontal pass (or a plain column crop when the width does not change). Pad rows are all
    // alike, so the first one's result is reused.
    std::vector<uint8_t> tmp(stride * rows);
    int64_t padDone = -1;
    Coeffs hc;
    if (needH) hc = Coefficients(srcW, outW, win.left, win.width);
    for (size_t y = 0; y < rows; y++) {
        const int64_t cy = rowFirst + (int64_t) y;
        uint8_t * o = &tmp[y * stride];
        if (canvas.IsPad(cy) && padDone >= 0) {
            std::memcpy(o, &tmp[(size_t) padDone * stride], stride);
            continue;
        }
        if (canvas.IsPad(cy)) padDone = (int64_t) y;
        const uint8_t * src = canvas.Row(cy);
        if (!needH) {
            std::memcpy(o, src + (size_t) win.left * 3, stride);
            continue;
        }
        for (size_t x = 0; x < width; x++) {
            const int32_t * k = &hc.k[x * hc.ksize];
            const int64_t n = hc.count[x];
            const uint8_t * p = src + (size_t) hc.first[x] * 3;
            int64_t s0 = kHalf, s1 = kHalf, s2 = kHalf;
            for (int64_t i = 0; i < n; i++, p += 3) {
                const int64_t c = k[i];
                s0 += p[0] * c;
                s1 += p[1] * c;
                s2 += p[2] * c;
            }
            *o++ = Clip8(s0);
            *o++ = Clip8(s1);
            *o++ = Clip8(s2);
        }
    }
    if (!needV) return tmp;

    // Vertical pass over the intermediate uint8 image.
    std::vector<uint8_t> out(stride * height);
    for (size_t y = 0; y < height; y++) {
        const int32_t * k = &vc.k[y * vc.ksize];
        const int64_t n = vc.count[y];
        const size_t ymin = (size_t) (vc.first[y] - rowFirst);
        uint8_t * o = &out[y * stride];
        for (size_t x = 0; x < stride; x += 3) {
            const uint8_t * p = &tmp[ymin * stride + x];
            int64_t s0 = kHalf, s1 = kHalf, s2 = kHalf;
            for (int64_t i = 0; i < n; i++, p += stride) {
                const int64_t c = k[i];
                s0 += p[0] * c;
                s1 += p[1] * c;
                s2 += p[2] * c;
            }
            *o++ = Clip8(s0);
            *o++ = Clip8(s1);
            *o++ = Clip8(s2);
        }
    }
    return out;
}

// transformers' get_resize_output_image_size(default_to_square=False) for an int size, as
// {height, width}: the long side is int(size * long / short), a double division truncated;
// when the short side already equals size the input size is kept (no resampling at all).
void ShortestEdgeSize(int64_t h, int64_t w, int64_t size, int64_t & outH, int64_t & outW) {
    const int64_t shortSide = w <= h ? w : h, longSide = w <= h ? h : w;
    if (shortSide == size) {
        outH = h;
        outW = w;
        return;
    }
    const int64_t newLong = (int64_t) std::trunc((double) (size * longSide) / (double) shortSide);
    outH = w <= h ? newLong : size;
    outW = w <= h ? size : newLong;
}

template <typename V> void FreeVector(V & v) { V().swap(v); }

// ---- argument parsing (TypeScript validated first; this keeps a wrong call from crashing) ----

int64_t SpecInt(Napi::Object spec, const char * key, int64_t lo, int64_t hi) {
    Napi::Value v = spec.Get(key);
    if (!v.IsNumber()) ThrowTypeError(spec.Env(), std::string("spec.") + key + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= (double) lo && d <= (double) hi) || std::floor(d) != d) {
        ThrowTypeError(spec.Env(), std::string("spec.") + key + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    }
    return (int64_t) d;
}

std::string SpecString(Napi::Object spec, const char * key) {
    Napi::Value v = spec.Get(key);
    if (!v.IsString()) ThrowTypeError(spec.Env(), std::string("spec.") + key + " must be a string");
    return v.As<Napi::String>().Utf8Value();
}

class PreprocessWorker : public PromiseWorker {
  public:
    explicit PreprocessWorker(const Napi::CallbackInfo & info) : PromiseWorker(info.Env()) {
        trimAfter_ = true;  // the input copy and the intermediate image are tens of MB for a photo
        Napi::Env env = info.Env();
        if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
            ThrowTypeError(env, "samples must be a Uint8Array");
        }
        Napi::Uint8Array samples = info[0].As<Napi::Uint8Array>();
        Napi::Object spec = ArgObject(info, 1, "spec");

        width_ = SpecInt(spec, "width", 1, INT32_MAX);
        height_ = SpecInt(spec, "height", 1, INT32_MAX);
        // Bands past the third (alpha, extra samples) are ignored, as convert('RGB') drops alpha.
        channels_ = (int) SpecInt(spec, "channels", 1, 8);
        depth_ = (int) SpecInt(spec, "depth", 8, 16);
        if (depth_ != 8 && depth_ != 16) ThrowTypeError(env, "spec.depth must be 8 or 16");

        const std::string convert = SpecString(spec, "convert");
        if (convert == "rgb") convert_ = Convert::Rgb;
        else if (convert == "high16") convert_ = Convert::High16;
        else if (convert == "clip16") convert_ = Convert::Clip16;
        else if (convert == "cmyk") convert_ = Convert::Cmyk;
        else ThrowTypeError(env, "spec.convert must be 'rgb', 'high16', 'clip16' or 'cmyk'");
        const bool wide = convert_ == Convert::High16 || convert_ == Convert::Clip16;
        if ((depth_ == 16) != wide) ThrowTypeError(env, "spec.convert '" + convert + "' needs depth " + (wide ? "16" : "8"));
        if (convert_ == Convert::Cmyk && channels_ < 4) ThrowTypeError(env, "spec.convert 'cmyk' needs 4 or more channels");

        const std::string geometry = SpecString(spec, "geometry");
        if (geometry == "none") geometry_ = Geometry::None;
        else if (geometry == "v0") geometry_ = Geometry::V0;
        else if (geometry == "v1.5") geometry_ = Geometry::V15;
        else ThrowTypeError(env, "spec.geometry must be 'none', 'v0' or 'v1.5'");
        if (geometry_ != Geometry::None) imageSize_ = SpecInt(spec, "imageSize", 1, kMaxImageSize);
        if (geometry_ == Geometry::V15) {
            Napi::Value pad = spec.Get("pad");
            if (!pad.IsArray() || pad.As<Napi::Array>().Length() != 3) ThrowTypeError(env, "spec.pad must be an array [r, g, b]");
            Napi::Array a = pad.As<Napi::Array>();
            for (uint32_t i = 0; i < 3; i++) {
                Napi::Value v = a.Get(i);
                const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
                if (!(d >= 0 && d <= 255) || std::floor(d) != d) ThrowTypeError(env, "spec.pad values must be integers from 0 to 255");
                pad_[i] = (uint8_t) d;
            }
        }

        // width, height < 2^31 and channels * bytes <= 16: the product fits in 64 bits.
        const uint64_t pixels = (uint64_t) width_ * (uint64_t) height_;
        const uint64_t need = pixels * (uint64_t) channels_ * (uint64_t) (depth_ / 8);
        if (need != samples.ByteLength()) {
            Throw(env, "ERR_IMAGE_FORMAT", "samples has " + std::to_string(samples.ByteLength()) + " bytes but " + std::to_string(width_) + "x" +
                                               std::to_string(height_) + "x" + std::to_string(channels_) + " at " + std::to_string(depth_) +
                                               " bits needs " + std::to_string(need));
        }

        // A copy: JavaScript may reuse or detach its buffer while this runs.
        try {
            if (depth_ == 8) {
                u8_.assign(samples.Data(), samples.Data() + samples.ByteLength());
            } else {
                u16_.resize(samples.ByteLength() / 2);
                std::memcpy(u16_.data(), samples.Data(), samples.ByteLength());
            }
        } catch (const std::bad_alloc &) {
            Throw(env, "ERR_IMAGE_TOO_LARGE", "out of memory copying a " + std::to_string(width_) + "x" + std::to_string(height_) + " image");
        }
    }

  protected:
    void Run() override {
        try {
            Preprocess();
        } catch (const std::bad_alloc &) {
            FreeVector(u8_);
            FreeVector(u16_);
            FreeVector(out_);
            return Fail("ERR_IMAGE_TOO_LARGE", "out of memory preprocessing a " + std::to_string(width_) + "x" + std::to_string(height_) + " image");
        }
        // Free the input here, so trimAfter_ returns it to the OS, rather than on the JS thread later.
        FreeVector(u8_);
        FreeVector(u16_);
    }

    void Preprocess() {
        Source src;
        src.u8 = u8_.data();
        src.u16 = u16_.data();
        src.width = width_;
        src.height = height_;
        src.channels = channels_;
        src.convert = convert_;

        if (geometry_ == Geometry::None) {
            out_.resize((size_t) width_ * (size_t) height_ * 3);
            for (int64_t y = 0; y < height_; y++) src.Row(y, &out_[(size_t) y * (size_t) width_ * 3]);
        } else {
            // expand2square pastes at (d // 2) on the longer side (v1.5); v0 uses the image as is.
            int64_t cw = width_, ch = height_, x0 = 0, y0 = 0;
            if (geometry_ == Geometry::V15 && width_ != height_) {
                cw = ch = std::max(width_, height_);
                if (width_ > height_) y0 = (width_ - height_) / 2;
                else x0 = (height_ - width_) / 2;
            }
            int64_t outH = 0, outW = 0;
            ShortestEdgeSize(ch, cw, imageSize_, outH, outW);
            // transformers' center_crop: top = (h - size) // 2, left = (w - size) // 2; both sides
            // are >= size after a shortest-edge resize, so no zero padding is ever needed.
            const Window win{(outW - imageSize_) / 2, (outH - imageSize_) / 2, imageSize_, imageSize_};
            const uint64_t work = (uint64_t) imageSize_ * 3 * (uint64_t) ch + (uint64_t) cw * 6 +
                                  CoeffBytes(cw, outW, imageSize_) + CoeffBytes(ch, outH, imageSize_);
            if (work > kMaxWorkBytes) {
                return Fail("ERR_IMAGE_TOO_LARGE", "a " + std::to_string(width_) + "x" + std::to_string(height_) +
                                                       " image has too extreme an aspect ratio to preprocess (would need " +
                                                       std::to_string(work >> 20) + " MiB); crop it first");
            }
            Canvas canvas(src, cw, ch, x0, y0, pad_);
            out_ = Resize(canvas, outW, outH, win);
        }
    }

    Napi::Value Result(Napi::Env env) override {
        return Napi::Buffer<uint8_t>::Copy(env, out_.data(), out_.size());
    }

  private:
    int64_t width_ = 0, height_ = 0, imageSize_ = 0;
    int channels_ = 0, depth_ = 8;
    Convert convert_ = Convert::Rgb;
    Geometry geometry_ = Geometry::None;
    uint8_t pad_[3] = {0, 0, 0};
    std::vector<uint8_t> u8_;
    std::vector<uint16_t> u16_;
    std::vector<uint8_t> out_;
};

Napi::Value PreprocessImage(const Napi::CallbackInfo & info) {
    return (new PreprocessWorker(info))->Queue();
}

}  // namespace

Napi::Object InitImage(Napi::Env env, Napi::Object exports) {
    exports.Set("preprocessImage", Napi::Function::New(env, PreprocessImage, "preprocessImage"));
    return exports;
}

}  // namespace lm
