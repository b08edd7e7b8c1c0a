// Training the aspect ladder: standardisation statistics, Adam, each learned rung's start and its epochs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <set>

#include "forward.hpp"

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

void check_train_params(const AspectTrainParams& p) {
    if (p.epochs < 1 || p.triplets_per_epoch < 1 || p.batch < 1 || p.val_triplets < 1) throw_usage("epochs, triplets, batch and validation triplets must be ≥ 1");
    if (!(p.learning_rate > 0) || !(p.gamma > 0)) throw_usage("learning rate and gamma must be positive");
    if (!(p.val_fraction > 0 && p.val_fraction < 1)) throw_usage("validation fraction must be in (0, 1)");
    if (p.out_dim < 1 || p.hidden_dim < 1) throw_usage("out_dim and hidden_dim must be ≥ 1");
    if (!(p.temperature > 0)) throw_usage("InfoNCE temperature must be positive");
    if (p.restarts < 1 || p.restarts > 100) throw_usage("restarts must be 1..100 (got {})", p.restarts);
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

// Adam on m.weights for params.epochs epochs; keeps the best validation epoch (or the start, best_epoch 0,
// when `keep_start` and no epoch beats it).
RungReport fit_rung(AspectModel& m, const FactorWindows& data, const std::string& aspect, const std::vector<std::string>& train_works,
                    const std::vector<Triplet>& val, const AspectTrainParams& p, bool keep_start) {
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
            loss += (p.loss == AspectLoss::infonce ? infonce_loss(m, data, batch, aspect, p.temperature, &grad)
                                                   : triplet_loss(m, data, batch, p.gamma, p.margin, &grad)) *
                    static_cast<double>(batch.size());
            adam.step(m.weights, grad);
        }
        loss /= static_cast<double>(triplets.size());
        const double acc = triplet_accuracy(m, data, val);
        if (p.on_epoch) p.on_epoch(m.rung, epoch, loss, acc);
        if (acc > r.validation_accuracy || (r.best_epoch == 0 && !keep_start)) r.validation_accuracy = acc, r.best_epoch = epoch, r.train_loss = loss, best = m.weights;
    }
    m.weights = best;
    return r;
}

// The linear rung's start: the diagonal solution seen through a random rank-k projection (seeded).
void start_linear(AspectModel& m, const AspectTrainParams& p) {
    std::mt19937_64 rng(p.seed + 101);
    std::normal_distribution<double> normal(0.0, 1.0 / std::sqrt(static_cast<double>(p.out_dim)));
    const std::vector<float> diag = m.weights;
    m.rung = AspectRung::linear;
    m.out_dim = p.out_dim;
    m.weights.resize(static_cast<std::size_t>(p.out_dim * m.in_dim));
    for (std::size_t i = 0; i < m.weights.size(); ++i) m.weights[i] = static_cast<float>(normal(rng)) * diag[i % diag.size()];
}

// The mlp rung's start: the linear map W [k, Din] exactly, as hidden units W z and −W z with W2 = [I, −I]
// (relu(t) − relu(−t) = t); hidden units beyond 2k start small and random (seeded) with no output weight.
void start_mlp(AspectModel& m, const AspectTrainParams& p) {
    const std::vector<float> lin = m.weights;
    m.rung = AspectRung::mlp;
    m.hidden_dim = p.hidden_dim;
    const detail::MlpLayout l(m);
    m.weights.assign(l.w2 + l.out * l.hidden, 0.0f);
    std::mt19937_64 rng(p.seed + 202);
    std::normal_distribution<double> normal(0.0, 0.01);
    for (std::size_t u = 0; u < l.hidden; ++u) {
        float* w1 = m.weights.data() + u * l.din;
        const std::size_t k = u % l.out;
        if (u < 2 * l.out) {
            const float sign = u < l.out ? 1.0f : -1.0f;
            for (std::size_t j = 0; j < l.din; ++j) w1[j] = sign * lin[k * l.din + j];
            m.weights[l.w2 + k * l.hidden + u] = sign;
        } else {
            for (std::size_t j = 0; j < l.din; ++j) w1[j] = static_cast<float>(normal(rng));
        }
    }
}


// One climb of the ladder with p's seed on the given split.
AspectTraining train_ladder(const FactorWindows& data, const std::string& aspect, const AspectTrainParams& p,
                            const std::vector<std::string>& train_works, const std::vector<Triplet>& val) {
    AspectTraining out;
    AspectModel m = identity_model(aspect, data.dim);
    AspectModel best = m;  // the rung with the best validation accuracy so far (ties: the lower rung)
    double best_accuracy = 0;
    auto clock = std::chrono::steady_clock::now();
    auto report = [&](RungReport r) {
        const auto now = std::chrono::steady_clock::now();
        r.seconds = std::chrono::duration<double>(now - clock).count();
        clock = now;
        if (out.ladder.empty() || r.validation_accuracy > best_accuracy) best = m, best_accuracy = r.validation_accuracy;
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
        report(fit_rung(m, data, aspect, train_works, val, p, false));
    }
    if (p.rung >= AspectRung::linear) {
        start_linear(m, p);
        report(fit_rung(m, data, aspect, train_works, val, p, false));
    }
    if (p.rung >= AspectRung::mlp) {
        start_mlp(m, p);
        report(fit_rung(m, data, aspect, train_works, val, p, true));
    }
    if (p.pick_best) m = best;
    out.model = std::move(m);
    return out;
}

// The restarts' mlp models as one mlp: hidden units stacked, outputs concatenated (W2 block diagonal), each
// block scaled by 1 / its mean output norm over `data` so that the cosine weighs the runs alike.
AspectModel ensemble_mlp(const std::vector<AspectModel>& runs, const FactorWindows& data) {
    AspectModel e = runs.front();
    e.hidden_dim = 0, e.out_dim = 0;
    for (const AspectModel& m : runs) e.hidden_dim += m.hidden_dim, e.out_dim += m.out_dim;
    const detail::MlpLayout el(e);
    e.weights.assign(el.w2 + el.out * el.hidden, 0.0f);
    std::size_t h0 = 0, k0 = 0;
    for (const AspectModel& m : runs) {
        const detail::MlpLayout l(m);
        double norms = 0;
        for (std::int64_t i = 0; i < data.n; ++i) {
            const std::vector<float> y = m.apply(data.row(i));
            double sq = 0;
            for (float v : y) sq += double(v) * v;
            norms += std::sqrt(sq);
        }
        const double scale = data.n > 0 && norms > 0 ? static_cast<double>(data.n) / norms : 1.0;
        std::copy_n(m.weights.begin(), l.hidden * l.din, e.weights.begin() + static_cast<std::ptrdiff_t>(h0 * l.din));
        std::copy_n(m.weights.begin() + static_cast<std::ptrdiff_t>(l.b1), l.hidden, e.weights.begin() + static_cast<std::ptrdiff_t>(el.b1 + h0));
        for (std::size_t k = 0; k < l.out; ++k)
            for (std::size_t u = 0; u < l.hidden; ++u)
                e.weights[el.w2 + (k0 + k) * el.hidden + h0 + u] = static_cast<float>(m.weights[l.w2 + k * l.hidden + u] * scale);
        h0 += l.hidden, k0 += l.out;
    }
    return e;
}

}  // namespace

AspectTraining train_aspect(const FactorWindows& data, const std::string& aspect, const AspectTrainParams& p) {
    check_train_params(p);
    const auto [train_works, val_works] = split_works(data, aspect, p);
    const std::vector<Triplet> val = draw_triplets(data, aspect, val_works, p.val_triplets, p.seed + 17);
    auto accuracy = [](const AspectTraining& t) { return t.ladder[static_cast<std::size_t>(t.model.rung)].validation_accuracy; };
    AspectTraining out;
    std::vector<double> runs;
    std::vector<AspectModel> models;
    for (int r = 0; r < p.restarts; ++r) {
        AspectTrainParams run = p;
        run.seed = p.seed + static_cast<std::uint64_t>(r);
        AspectTraining t = train_ladder(data, aspect, run, train_works, val);
        runs.push_back(accuracy(t));
        if (p.ensemble) models.push_back(t.model);
        if (r == 0 || runs.back() > accuracy(out)) out = std::move(t), out.model.info["seed"] = run.seed;
    }
    const bool all_mlp = std::all_of(models.begin(), models.end(), [](const AspectModel& m) { return m.rung == AspectRung::mlp; });
    if (models.size() > 1 && all_mlp) {
        AspectModel e = ensemble_mlp(models, data);
        const double acc = triplet_accuracy(e, data, val);
        out.model.info["ensemble_validation_accuracy"] = acc;
        if (acc >= accuracy(out)) {
            e.info = out.model.info;
            e.info["ensemble"] = models.size();
            e.info.erase("seed");
            out.model = std::move(e);
            out.ladder.back().validation_accuracy = acc;
        }
    }
    out.model.info.update({{"validation_accuracy", accuracy(out)}, {"train_works", train_works}, {"validation_works", val_works},
                           {"epochs", p.epochs}, {"loss", to_string(p.loss)}});
    if (p.restarts > 1) out.model.info["restarts_validation_accuracy"] = runs;
    return out;
}

}  // namespace mess
