// The training losses over a batch of factor triplets and their gradients: the soft triplet loss and
// InfoNCE (mess/aspects.hpp). Each window of the batch is passed forward once; ∂ℓ/∂y is gathered per
// window and passed back once.
#include <algorithm>
#include <cmath>

#include "forward.hpp"

namespace mess {

namespace {

using detail::AspectPass;

// A batch's 3·B windows (a_0, p_0, n_0, a_1, ...) through the model, with ∂ℓ/∂y per window.
struct BatchPass {
    std::vector<AspectPass> pass;
    std::vector<std::vector<double>> gy;

    BatchPass(const AspectModel& m, const FactorWindows& data, const std::vector<Triplet>& triplets, bool want_grad) : pass(3 * triplets.size()) {
        for (std::size_t i = 0; i < triplets.size(); ++i) {
            detail::aspect_forward(m, data.row(triplets[i].a), pass[3 * i]);
            detail::aspect_forward(m, data.row(triplets[i].p), pass[3 * i + 1]);
            detail::aspect_forward(m, data.row(triplets[i].n), pass[3 * i + 2]);
        }
        if (want_grad) gy.assign(pass.size(), std::vector<double>(static_cast<std::size_t>(m.out_dim), 0.0));
    }
    double cosine(std::size_t u, std::size_t v) const {
        double dot = 0;
        for (std::size_t k = 0; k < pass[u].y.size(); ++k) dot += pass[u].y[k] * pass[v].y[k];
        return dot / (pass[u].norm * pass[v].norm);
    }
    // gy[u] += scale · ∂cos(y_u, y_v)/∂y_u and gy[v] += scale · ∂cos/∂y_v.
    void add_dcos(std::size_t u, std::size_t v, double cos, double scale) {
        const AspectPass &a = pass[u], &b = pass[v];
        for (std::size_t k = 0; k < a.y.size(); ++k) {
            gy[u][k] += scale * (b.y[k] / (a.norm * b.norm) - cos * a.y[k] / (a.norm * a.norm));
            gy[v][k] += scale * (a.y[k] / (a.norm * b.norm) - cos * b.y[k] / (b.norm * b.norm));
        }
    }
    // grad = (1/B) Σ_windows ∂ℓ/∂weights.
    void backward(const AspectModel& m, std::size_t batch, std::vector<double>& grad) const {
        grad.assign(m.weights.size(), 0.0);
        for (std::size_t i = 0; i < pass.size(); ++i) detail::aspect_backward(m, pass[i], gy[i], grad);
        const double inv = batch ? 1.0 / static_cast<double>(batch) : 0.0;
        for (double& g : grad) g *= inv;
    }
};

bool learned(const AspectModel& m) { return m.rung == AspectRung::diagonal || m.rung == AspectRung::linear || m.rung == AspectRung::mlp; }

}  // namespace

double triplet_loss(const AspectModel& model, const FactorWindows& data, const std::vector<Triplet>& triplets, double gamma, double margin,
                    std::vector<double>* grad) {
    const bool want = grad && learned(model);
    BatchPass b(model, data, triplets, want);
    double total = 0;
    for (std::size_t i = 0; i < triplets.size(); ++i) {
        const std::size_t a = 3 * i, p = a + 1, n = a + 2;
        const double cap = b.cosine(a, p), can = b.cosine(a, n);
        const double delta = gamma * (can - cap + margin);
        total += delta > 30 ? delta : std::log1p(std::exp(delta));
        if (!want) continue;
        const double s = gamma / (1 + std::exp(-delta));  // dℓ/dΔ · γ
        b.add_dcos(a, n, can, s);
        b.add_dcos(a, p, cap, -s);
    }
    if (grad) {
        if (want) b.backward(model, triplets.size(), *grad);
        else grad->assign(model.weights.size(), 0.0);
    }
    return triplets.empty() ? 0 : total / static_cast<double>(triplets.size());
}

double infonce_loss(const AspectModel& model, const FactorWindows& data, const std::vector<Triplet>& triplets, const std::string& aspect,
                    double temperature, std::vector<double>* grad) {
    if (!(temperature > 0)) throw_usage("InfoNCE temperature must be positive");
    const bool want = grad && learned(model);
    BatchPass b(model, data, triplets, want);
    std::vector<const std::string*> value(b.pass.size());
    for (std::size_t i = 0; i < triplets.size(); ++i) {
        const std::int64_t rows[3] = {triplets[i].a, triplets[i].p, triplets[i].n};
        for (std::size_t r = 0; r < 3; ++r)
            value[3 * i + r] = &data.track_values.at(static_cast<std::size_t>(data.track.at(static_cast<std::size_t>(rows[r])))).at(aspect);
    }
    double total = 0;
    std::vector<std::size_t> cand;
    std::vector<double> logit;
    for (std::size_t i = 0; i < triplets.size(); ++i) {
        const std::size_t a = 3 * i;
        cand.assign(1, a + 1);  // the positive first
        for (std::size_t c = 0; c < b.pass.size(); ++c)
            if (c % 3 != 0 && c != a + 1 && *value[c] != *value[a]) cand.push_back(c);
        logit.resize(cand.size());
        for (std::size_t c = 0; c < cand.size(); ++c) logit[c] = b.cosine(a, cand[c]) / temperature;
        const double top = *std::max_element(logit.begin(), logit.end());
        double sum = 0;
        for (double l : logit) sum += std::exp(l - top);
        total += top + std::log(sum) - logit[0];
        if (!want) continue;
        for (std::size_t c = 0; c < cand.size(); ++c) {  // ∂ℓ/∂logit = softmax − [c is the positive]
            const double d = std::exp(logit[c] - top) / sum - (c == 0 ? 1.0 : 0.0);
            b.add_dcos(a, cand[c], logit[c] * temperature, d / temperature);
        }
    }
    if (grad) {
        if (want) b.backward(model, triplets.size(), *grad);
        else grad->assign(model.weights.size(), 0.0);
    }
    return triplets.empty() ? 0 : total / static_cast<double>(triplets.size());
}

double triplet_accuracy(const AspectModel& model, const FactorWindows& data, const std::vector<Triplet>& triplets) {
    AspectPass a, p, n;
    auto cos = [](const AspectPass& u, const AspectPass& v) {
        double dot = 0;
        for (std::size_t k = 0; k < u.y.size(); ++k) dot += u.y[k] * v.y[k];
        return dot / (u.norm * v.norm);
    };
    std::int64_t right = 0;
    for (const Triplet& t : triplets) {
        detail::aspect_forward(model, data.row(t.a), a);
        detail::aspect_forward(model, data.row(t.p), p);
        detail::aspect_forward(model, data.row(t.n), n);
        right += cos(a, p) > cos(a, n);
    }
    return triplets.empty() ? 0 : static_cast<double>(right) / static_cast<double>(triplets.size());
}

}  // namespace mess
