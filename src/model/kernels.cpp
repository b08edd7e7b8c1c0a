#include "kernels.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <immintrin.h>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "mess/util.hpp"

namespace mess::model_detail {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Kernels::Impl {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    // Convolution weights in the layout each convolution primitive asked for, keyed by the source tensor.
    std::map<const float*, memory> conv_weights;
    std::set<const float*> no_bf16_conv;  // convolutions oneDNN cannot run in bf16 (they run in fp32)
    // bf16 matrix-product primitives (with the weights layout they want) by shape, strides and options.
    std::map<std::array<std::int64_t, 14>, std::pair<dnnl::matmul, memory::desc>> matmuls;
    std::map<const void*, memory> packed;  // constant B matrices in the layout their primitive wants
};

Kernels::Kernels() : impl_(std::make_unique<Impl>()) {}
Kernels::~Kernels() = default;

void Kernels::gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
                   std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
    dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
    if (st != dnnl_success) throw_internal("dnnl_sgemm failed (status {}) for {}x{}x{}", static_cast<int>(st), m, n, k);
}

void Kernels::matmul_bf16(const MatmulBf16& mm) {
    Impl& im = *impl_;
    const bool batched = mm.batch > 1;
    auto md = [&](std::int64_t rows, std::int64_t cols, dt type, memory::dims strides, std::int64_t batch_stride) {
        if (!batched) return memory::desc({rows, cols}, type, strides);
        return memory::desc({mm.batch, rows, cols}, type, {batch_stride, strides[0], strides[1]});
    };
    const memory::desc a_md = md(mm.m, mm.k, dt::bf16, {mm.a_row, 1}, mm.a_batch);
    const memory::desc b_md = md(mm.k, mm.n, dt::bf16, {mm.b_row, mm.b_col}, mm.b_batch);
    const memory::desc c_md = md(mm.m, mm.n, dt::f32, {mm.c_row, 1}, mm.c_batch);
    const bool pack = mm.constant_b && !batched;
    const bool bias = mm.bias && !batched;
    const std::array<std::int64_t, 14> key = {mm.batch,   mm.m,     mm.n,           mm.k,  mm.a_batch, mm.a_row, mm.b_batch,
                                              mm.b_row,   mm.b_col, mm.c_batch,     mm.c_row, mm.beta != 0.0f, pack,
                                              bias * 2 + mm.gelu};
    const memory::desc bias_md({1, mm.n}, dt::f32, tag::ab);
    auto it = im.matmuls.find(key);
    if (it == im.matmuls.end()) {
        dnnl::primitive_attr attr;
        dnnl::post_ops ops;
        if (mm.beta != 0.0f) ops.append_sum(1.0f);
        if (mm.gelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
        attr.set_post_ops(ops);
        try {
            const memory::desc w_md = pack ? memory::desc({mm.k, mm.n}, dt::bf16, tag::any) : b_md;
            dnnl::matmul::primitive_desc pd(bias ? dnnl::matmul::desc(a_md, w_md, bias_md, c_md) : dnnl::matmul::desc(a_md, w_md, c_md),
                                            attr, im.engine);
            it = im.matmuls.emplace(key, std::pair{dnnl::matmul(pd), pd.weights_desc()}).first;
        } catch (const dnnl::error& e) {
            throw_usage("bf16 matrix products are not available on this CPU (they need AVX-512; oneDNN: {}); use --precision fp32",
                        e.what());
        }
    }
    const auto& [prim, w_desc] = it->second;
    memory bm(b_md, im.engine, const_cast<std::uint16_t*>(mm.b));
    if (pack) {
        auto p = im.packed.find(mm.b);
        if (p == im.packed.end() || p->second.get_desc() != w_desc) {
            memory packed(w_desc, im.engine);
            dnnl::reorder(bm, packed).execute(im.stream, bm, packed);
            p = im.packed.insert_or_assign(mm.b, packed).first;
        }
        bm = p->second;
    }
    memory am(a_md, im.engine, const_cast<std::uint16_t*>(mm.a)), cm(c_md, im.engine, mm.c);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    if (bias) args.emplace(DNNL_ARG_BIAS, memory(bias_md, im.engine, const_cast<float*>(mm.bias)));
    prim.execute(im.stream, args);
    im.stream.wait();
}

// oneDNN keeps a primitive cache, so re-creating a primitive of a shape seen before costs a lookup.
void Kernels::gelu(float* x, std::int64_t n) {
    memory::desc md({n}, dt::f32, tag::a);
    memory mem(md, impl_->engine, x);
    dnnl::eltwise_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_gelu_erf, md, 0.0f, 0.0f}, impl_->engine);
    dnnl::eltwise_forward(pd).execute(impl_->stream, {{DNNL_ARG_SRC, mem}, {DNNL_ARG_DST, mem}});
    impl_->stream.wait();
}

void Kernels::softmax_rows(float* x, std::int64_t rows, std::int64_t cols) {
    memory::desc md({rows, cols}, dt::f32, tag::ab);
    memory mem(md, impl_->engine, x);
    dnnl::softmax_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, md, 1}, impl_->engine);
    dnnl::softmax_forward(pd).execute(impl_->stream, {{DNNL_ARG_SRC, mem}, {DNNL_ARG_DST, mem}});
    impl_->stream.wait();
}

void Kernels::layer_norm(const float* x, float* y, std::int64_t rows, std::int64_t cols, const float* gamma,
                         const float* beta, float eps) {
    memory::desc md({rows, cols}, dt::f32, tag::ab);
    memory::desc pmd({cols}, dt::f32, tag::a);
    memory src(md, impl_->engine, const_cast<float*>(x)), dst(md, impl_->engine, y);
    memory scale(pmd, impl_->engine, const_cast<float*>(gamma)), shift(pmd, impl_->engine, const_cast<float*>(beta));
    dnnl::layer_normalization_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, md, eps,
         dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift},
        impl_->engine);
    dnnl::layer_normalization_forward(pd).execute(
        impl_->stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCALE, scale}, {DNNL_ARG_SHIFT, shift}});
    impl_->stream.wait();
}

void Kernels::conv1d(const Conv1d& c, const float* x, float* y) {
    Impl& im = *impl_;
    if (c.bf16 && im.no_bf16_conv.contains(c.weights)) {
        Conv1d fp32 = c;
        fp32.bf16 = false;
        return conv1d(fp32, x, y);
    }
    const std::int64_t gi = c.c_in / c.groups, go = c.c_out / c.groups;
    const dt compute = c.bf16 ? dt::bf16 : dt::f32;
    memory::desc src_md({c.batch, c.c_in, c.t_in}, compute, tag::nwc);  // [batch, time, channels] in memory
    memory::desc dst_md({c.batch, c.c_out, c.t_out()}, dt::f32, tag::nwc);
    memory::dims wdims = c.groups > 1 ? memory::dims{c.groups, go, gi, c.kernel} : memory::dims{c.c_out, c.c_in, c.kernel};
    memory::desc any_w(wdims, compute, tag::any);
    memory::desc user_w(wdims, dt::f32, c.groups > 1 ? tag::goiw : tag::oiw);
    memory::desc bias_md({c.c_out}, dt::f32, tag::a);
    auto cd = c.bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                                       src_md, any_w, bias_md, dst_md, {c.stride}, {c.pad_before}, {c.pad_after})
                     : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                                       src_md, any_w, dst_md, {c.stride}, {c.pad_before}, {c.pad_after});
    dnnl::primitive_attr attr;
    if (c.gelu) {
        dnnl::post_ops ops;
        ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
        attr.set_post_ops(ops);
    }
    dnnl::convolution_forward::primitive_desc pd;
    try {
        pd = dnnl::convolution_forward::primitive_desc(cd, attr, im.engine);
    } catch (const dnnl::error& e) {
        throw_usage("no {} convolution on this CPU (oneDNN: {})", c.bf16 ? "bf16" : "fp32", e.what());
    }
    auto it = im.conv_weights.find(c.weights);
    if (it == im.conv_weights.end() || it->second.get_desc() != pd.weights_desc()) {
        memory user(user_w, im.engine, const_cast<float*>(c.weights));
        memory packed(pd.weights_desc(), im.engine);
        dnnl::reorder(user, packed).execute(im.stream, user, packed);
        it = im.conv_weights.insert_or_assign(c.weights, packed).first;
    }
    std::vector<std::uint16_t> x16;
    if (c.bf16) {
        x16.resize(static_cast<std::size_t>(c.batch * c.t_in * c.c_in));
        to_bf16(x, x16.data(), static_cast<std::int64_t>(x16.size()));
    }
    memory src(src_md, im.engine, c.bf16 ? static_cast<void*>(x16.data()) : const_cast<float*>(x)), dst(dst_md, im.engine, y);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, it->second}, {DNNL_ARG_DST, dst}};
    if (c.bias) args.emplace(DNNL_ARG_BIAS, memory(bias_md, im.engine, const_cast<float*>(c.bias)));
    dnnl::convolution_forward conv;
    try {
        conv = dnnl::convolution_forward(pd);
    } catch (const dnnl::error&) {
        if (!c.bf16) throw;
        // oneDNN has no bf16 kernel for some small grouped shapes (e.g. 8 channels per group): fp32 for this one.
        im.no_bf16_conv.insert(c.weights);
        im.conv_weights.erase(c.weights);
        return conv1d(c, x, y);
    }
    conv.execute(im.stream, args);
    im.stream.wait();
}

namespace {

void to_bf16_scalar(const float* x, std::uint16_t* y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = float_to_bf16(x[i]);
}

// VCVTNEPS2BF16: float_to_bf16's rounding (nearest even, NaN kept), 16 values per instruction; input denormals
// become zero (far below anything the encoder's activations hold).
__attribute__((target("avx512f,avx512bf16,avx512vl"))) void to_bf16_avx512(const float* x, std::uint16_t* y, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        std::memcpy(y + i, &h, sizeof h);
    }
    to_bf16_scalar(x + i, y + i, n - i);
}

}  // namespace

void to_bf16(const float* x, std::uint16_t* y, std::int64_t n) {
    static const auto convert = __builtin_cpu_supports("avx512bf16") ? to_bf16_avx512 : to_bf16_scalar;
    constexpr std::int64_t kChunk = 1 << 16;
    if (n <= kChunk) return convert(x, y, n);
#pragma omp parallel for schedule(static)
    for (std::int64_t c = 0; c < (n + kChunk - 1) / kChunk; ++c) convert(x + c * kChunk, y + c * kChunk, std::min(kChunk, n - c * kChunk));
}

void add_bias(float* y, std::int64_t rows, std::int64_t cols, const float* bias) {
    for (std::int64_t r = 0; r < rows; ++r) {
        float* row = y + r * cols;
        for (std::int64_t c = 0; c < cols; ++c) row[c] += bias[c];
    }
}

void add_inplace(float* y, const float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void channel_norm_over_time(float* x, std::int64_t frames, std::int64_t channels, const float* gamma,
                            const float* beta, float eps) {
    // Column statistics of a time-major matrix in one pass: sum and sum of squares, in double.
    std::vector<double> sum(static_cast<std::size_t>(channels), 0.0), sq(static_cast<std::size_t>(channels), 0.0);
    for (std::int64_t t = 0; t < frames; ++t) {
        const float* row = x + t * channels;
        for (std::int64_t c = 0; c < channels; ++c) {
            const double v = row[c];
            sum[c] += v;
            sq[c] += v * v;
        }
    }
    for (std::int64_t c = 0; c < channels; ++c) {
        sum[c] /= static_cast<double>(frames);                                     // mean
        sq[c] = std::max(0.0, sq[c] / static_cast<double>(frames) - sum[c] * sum[c]);  // biased variance
    }
    std::vector<float> scale(static_cast<std::size_t>(channels)), shift(static_cast<std::size_t>(channels));
    for (std::int64_t c = 0; c < channels; ++c) {
        double inv = 1.0 / std::sqrt(sq[c] + eps);
        scale[c] = static_cast<float>(gamma[c] * inv);
        shift[c] = static_cast<float>(beta[c] - sum[c] * gamma[c] * inv);
    }
    for (std::int64_t t = 0; t < frames; ++t) {
        float* row = x + t * channels;
        for (std::int64_t c = 0; c < channels; ++c) row[c] = row[c] * scale[c] + shift[c];
    }
}

}  // namespace mess::model_detail
