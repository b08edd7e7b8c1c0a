#include "kernels.hpp"

#include <algorithm>
#include <cmath>
#include <map>
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
};

Kernels::Kernels() : impl_(std::make_unique<Impl>()) {}
Kernels::~Kernels() = default;

void Kernels::gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
                   std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
    dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
    if (st != dnnl_success) throw_internal("dnnl_sgemm failed (status {}) for {}x{}x{}", static_cast<int>(st), m, n, k);
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
    const std::int64_t gi = c.c_in / c.groups, go = c.c_out / c.groups;
    memory::desc src_md({c.batch, c.c_in, c.t_in}, dt::f32, tag::nwc);  // [batch, time, channels] in memory
    memory::desc dst_md({c.batch, c.c_out, c.t_out()}, dt::f32, tag::nwc);
    memory::dims wdims = c.groups > 1 ? memory::dims{c.groups, go, gi, c.kernel} : memory::dims{c.c_out, c.c_in, c.kernel};
    memory::desc any_w(wdims, dt::f32, tag::any);
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
    dnnl::convolution_forward::primitive_desc pd(cd, attr, im.engine);
    auto it = im.conv_weights.find(c.weights);
    if (it == im.conv_weights.end() || it->second.get_desc() != pd.weights_desc()) {
        memory user(user_w, im.engine, const_cast<float*>(c.weights));
        memory packed(pd.weights_desc(), im.engine);
        dnnl::reorder(user, packed).execute(im.stream, user, packed);
        it = im.conv_weights.insert_or_assign(c.weights, packed).first;
    }
    memory src(src_md, im.engine, const_cast<float*>(x)), dst(dst_md, im.engine, y);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, it->second}, {DNNL_ARG_DST, dst}};
    if (c.bias) args.emplace(DNNL_ARG_BIAS, memory(bias_md, im.engine, const_cast<float*>(c.bias)));
    dnnl::convolution_forward(pd).execute(im.stream, args);
    im.stream.wait();
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
