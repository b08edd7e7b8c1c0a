// Training the aspect ladder: standardisation statistics, the soft triplet loss and its gradient, Adam.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <set>

#include "mess/aspects.hpp"

namespace mess {

Adam::Adam(std::size_t size, double learning_rate, double beta1, double beta2, double eps)
    : lr_(learning_rate), b1_(beta1), b2_(beta2), eps_(eps), m_(size, 0.0), v_(size, 0.0) {}

void Adam::step(std::vector<float>& params, const std::vector<double>& grad) {
    if (params.size() != m_.size() || grad.size() != m_.size()) throw_internal("Adam: {} parameters, {} gradients, {} state", params.size(), grad.size(), m_.size());
    ++t_;
    const double c1 = 1 - std::pow(b1_, static_cast<double>(t_)), c2 = 1 - std::pow(b2_, static_cast<double>(t_));
    for (std::size_t i = 0; i < params.size(); ++i) {
        m_[i] = b1_ * m_[i] + (1 - b1_) * grad[i];
        v_[i] = b2_ * v_[i] + (1 - b2_) * grad[i] * grad[i];
        params[i] -= static_cast<float>(lr_ * (m_[i] / c1) / (std::sqrt(v_[i] / c2) + eps_));
    }
}

namespace {

// A triplet's standardised inputs and outputs, in double.
struct Side {
    std::vector<double> z, y;
    double norm = 0;
};

void forward(const AspectModel& m, const float* x, Side& s) {
    const auto din = static_cast<std::size_t>(m.in_dim);
    s.z.resize(din);
    for (std::size_t j = 0; j < din; ++j) s.z[j] = m.rung == AspectRung::identity ? x[j] : (double(x[j]) - m.mean[j]) / m.scale[j];
    if (m.rung == AspectRung::linear) {
        s.y.assign(static_cast<std::size_t>(m.out_dim), 0.0);
        for (std::size_t k = 0; k < s.y.size(); ++k) {
            const float* w = m.weights.data() + k * din;
            double acc = 0;
            for (std::size_t j = 0; j < din; ++j) acc += w[j] * s.z[j];
            s.y[k] = acc;
        }
    } else {
        s.y = s.z;
        if (m.rung == AspectRung::diagonal)
            for (std::size_t j = 0; j < din; ++j) s.y[j] *= m.weights[j];
    }
    double n2 = 0;
    for (double v : s.y) n2 += v * v;
    s.norm = std::max(std::sqrt(n2), 1e-12);
}

double cosine(const Side& a, const Side& b) {
    double dot = 0;
    for (std::size_t k = 0; k < a.y.size(); ++k) dot += a.y[k] * b.y[k];
    return dot / (a.norm * b.norm);
}

// g += scale · d cos(u, v) / du  =  scale · (v / (|u||v|) − cos · u / |u|²)
void add_dcos(std::vector<double>& g, const Side& u, const Side& v, double cos, double scale) {
    for (std::size_t k = 0; k < g.size(); ++k) g[k] += scale * (v.y[k] / (u.norm * v.norm) - cos * u.y[k] / (u.norm * u.norm));
}

// grad += dℓ/dy ⊗ z (linear) or dℓ/dy ⊙ z (diagonal).
void backward(const AspectModel& m, const Side& s, const std::vector<double>& gy, std::vector<double>& grad) {
    const auto din = static_cast<std::size_t>(m.in_dim);
    if (m.rung == AspectRung::diagonal) {
        for (std::size_t j = 0; j < din; ++j) grad[j] += gy[j] * s.z[j];
        return;
    }
    for (std::size_t k = 0; k < gy.size(); ++k) {
        double* row = grad.data() + k * din;
        for (std::size_t j = 0; j < din; ++j) row[j] += gy[k] * s.z[j];
    }
}

}  // namespace

double triplet_loss(const AspectModel& model, const FactorWindows& data, const std::vector<Triplet>& triplets, double gamma, double margin,
                    std::vector<double>* grad) {
    if (grad) grad->assign(model.weights.size(), 0.0);
    Side a, p, n;
    double total = 0;
    std::vector<double> ga, gp, gn;
    for (const Triplet& t : triplets) {
        forward(model, data.row(t.a), a);
        forward(model, data.row(t.p), p);
        forward(model, data.row(t.n), n);
        const double cap = cosine(a, p), can = cosine(a, n);
        const double delta = gamma * (can - cap + margin);
        total += delta > 30 ? delta : std::log1p(std::exp(delta));
        if (!grad || (model.rung != AspectRung::diagonal && model.rung != AspectRung::linear)) continue;
        const double s = gamma / (1 + std::exp(-delta));  // dℓ/dΔ · γ
        ga.assign(a.y.size(), 0.0), gp.assign(a.y.size(), 0.0), gn.assign(a.y.size(), 0.0);
        add_dcos(ga, a, n, can, s);
        add_dcos(ga, a, p, cap, -s);
        add_dcos(gp, p, a, cap, -s);
        add_dcos(gn, n, a, can, s);
        backward(model, a, ga, *grad);
        backward(model, p, gp, *grad);
        backward(model, n, gn, *grad);
    }
    const double inv = triplets.empty() ? 0 : 1.0 / static_cast<double>(triplets.size());
    if (grad)
        for (double& g : *grad) g *= inv;
    return total * inv;
}

double triplet_accuracy(const AspectModel& model, const FactorWindows& data, const std::vector<Triplet>& triplets) {
    Side a, p, n;
    std::int64_t right = 0;
    for (const Triplet& t : triplets) {
        forward(model, data.row(t.a), a);
        forward(model, data.row(t.p), p);
        forward(model, data.row(t.n), n);
        right += cosine(a, p) > cosine(a, n);
    }
    return triplets.empty() ? 0 : static_cast<double>(right) / static_cast<double>(triplets.size());
}

namespace {

void check_train_params(const AspectTrainParams& p) {
    if (p.epochs < 1 || p.triplets_per_epoch < 1 || p.batch < 1 || p.val_triplets < 1) throw_usage("epochs, triplets, batch and validation triplets must be ≥ 1");
    if (!(p.learning_rate > 0) || !(p.gamma > 0)) throw_usage("learning rate and gamma must be positive");
    if (!(p.val_fraction > 0 && p.val_fraction < 1)) throw_usage("validation fraction must be in (0, 1)");
    if (p.out_dim < 1) throw_usage("out_dim must be ≥ 1");
}

// The aspect's works, shuffled by `seed`, split into (train, validation).
std::pair<std::vector<std::string>, std::vector<std::string>> split_works(const FactorWindows& data, const std::string& aspect, const AspectTrainParams& p) {
    std::set<std::string> works;
    for (std::size_t t = 0; t < data.track_ids.size(); ++t)
        if (data.track_factor[t] == aspect) works.insert(data.track_work[t]);
    std::vector<std::string> all(works.begin(), works.end());
    if (all.size() < 4) throw_usage("aspect '{}': {} work(s) vary it; training needs at least 4 (2 to train, 2 to validate)", aspect, all.size());
    std::mt19937_64 rng(p.seed ^ 0x9e3779b97f4a7c15ull);
    std::shuffle(all.begin(), all.end(), rng);
    const auto nval = std::clamp<std::size_t>(static_cast<std::size_t>(std::ceil(p.val_fraction * static_cast<double>(all.size()))), 2, all.size() - 2);
    return {std::vector<std::string>(all.begin() + static_cast<std::ptrdiff_t>(nval), all.end()), std::vector<std::string>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(nval))};
}

// Mean and standard deviation per dimension over the rows of the training works.
void fit_standardisation(const FactorWindows& data, const std::vector<std::string>& works, AspectModel& m) {
    const std::set<std::string> keep(works.begin(), works.end());
    const auto d = static_cast<std::size_t>(data.dim);
    std::vector<double> sum(d, 0.0), sq(d, 0.0);
    double count = 0;
    for (std::int64_t i = 0; i < data.n; ++i) {
        if (!keep.count(data.track_work[static_cast<std::size_t>(data.track[static_cast<std::size_t>(i)])])) continue;
        const float* x = data.row(i);
        for (std::size_t j = 0; j < d; ++j) sum[j] += x[j], sq[j] += double(x[j]) * x[j];
        ++count;
    }
    m.mean.resize(d), m.scale.resize(d);
    for (std::size_t j = 0; j < d; ++j) {
        const double mu = sum[j] / std::max(count, 1.0);
        m.mean[j] = static_cast<float>(mu);
        m.scale[j] = static_cast<float>(std::max(std::sqrt(std::max(sq[j] / std::max(count, 1.0) - mu * mu, 0.0)), 1e-4));
    }
}

// Adam on m.weights for params.epochs epochs; keeps the best validation epoch.
RungReport fit_rung(AspectModel& m, const FactorWindows& data, const std::string& aspect, const std::vector<std::string>& train_works,
                    const std::vector<Triplet>& val, const AspectTrainParams& p) {
    RungReport r{m.rung};
    r.validation_accuracy = triplet_accuracy(m, data, val);
    std::vector<float> best = m.weights;
    Adam adam(m.weights.size(), p.learning_rate);
    std::vector<double> grad;
    for (int epoch = 1; epoch <= p.epochs; ++epoch) {
        const auto triplets = draw_triplets(data, aspect, train_works, p.triplets_per_epoch, p.seed * 1000003 + static_cast<std::uint64_t>(epoch));
        double loss = 0;
        for (std::size_t b = 0; b < triplets.size(); b += static_cast<std::size_t>(p.batch)) {
            const std::vector<Triplet> batch(triplets.begin() + static_cast<std::ptrdiff_t>(b),
                                             triplets.begin() + static_cast<std::ptrdiff_t>(std::min(triplets.size(), b + static_cast<std::size_t>(p.batch))));
            loss += triplet_loss(m, data, batch, p.gamma, p.margin, &grad) * static_cast<double>(batch.size());
            adam.step(m.weights, grad);
        }
        loss /= static_cast<double>(triplets.size());
        const double acc = triplet_accuracy(m, data, val);
        if (p.on_epoch) p.on_epoch(m.rung, epoch, loss, acc);
        if (acc > r.validation_accuracy || r.best_epoch == 0) r.validation_accuracy = acc, r.best_epoch = epoch, r.train_loss = loss, best = m.weights;
    }
    m.weights = best;
    return r;
}

}  // namespace

AspectTraining train_aspect(const FactorWindows& data, const std::string& aspect, const AspectTrainParams& p) {
    check_train_params(p);
    const auto [train_works, val_works] = split_works(data, aspect, p);
    const std::vector<Triplet> val = draw_triplets(data, aspect, val_works, p.val_triplets, p.seed + 17);
    AspectTraining out;
    AspectModel m = identity_model(aspect, data.dim);
    auto clock = std::chrono::steady_clock::now();
    auto report = [&](RungReport r) {
        const auto now = std::chrono::steady_clock::now();
        r.seconds = std::chrono::duration<double>(now - clock).count();
        clock = now;
        out.ladder.push_back(r);
    };
    report({AspectRung::identity, triplet_accuracy(m, data, val)});
    if (p.rung >= AspectRung::standardise) {
        m.rung = AspectRung::standardise;
        fit_standardisation(data, train_works, m);
        report({m.rung, triplet_accuracy(m, data, val)});
    }
    if (p.rung >= AspectRung::diagonal) {
        m.rung = AspectRung::diagonal;
        m.weights.assign(static_cast<std::size_t>(data.dim), 1.0f);
        report(fit_rung(m, data, aspect, train_works, val, p));
    }
    if (p.rung == AspectRung::linear) {
        // Start from the diagonal solution seen through a random rank-k projection (seeded).
        std::mt19937_64 rng(p.seed + 101);
        std::normal_distribution<double> normal(0.0, 1.0 / std::sqrt(static_cast<double>(p.out_dim)));
        const std::vector<float> diag = m.weights;
        m.rung = AspectRung::linear;
        m.out_dim = p.out_dim;
        m.weights.resize(static_cast<std::size_t>(p.out_dim * data.dim));
        for (std::size_t i = 0; i < m.weights.size(); ++i) m.weights[i] = static_cast<float>(normal(rng)) * diag[i % diag.size()];
        report(fit_rung(m, data, aspect, train_works, val, p));
    }
    m.info = {{"validation_accuracy", out.ladder.back().validation_accuracy}, {"train_works", train_works}, {"validation_works", val_works},
              {"seed", p.seed}, {"epochs", p.epochs}};
    out.model = std::move(m);
    return out;
}

}  // namespace mess
