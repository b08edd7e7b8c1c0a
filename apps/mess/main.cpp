// `mess` — Music Expressive Similarity Search. One binary, one subcommand per job.
// Exit codes: 0 ok, 1 usage error, 2 input error (bad file, unknown id), 3 internal error.
#include <cstdio>

#include <spdlog/spdlog.h>

#include "catalog_cli.hpp"

int main(int argc, char** argv) {
    using namespace mess;
    cli::Context ctx;
    CLI::App app{"mess — Music Expressive Similarity Search: find music that sounds alike, overall or by one\n"
                 "musical aspect. Every subcommand has --help; data output has --json.\n"
                 "Configuration: flags > MESS_* environment variables > defaults (see `mess config`)."};
    app.set_version_flag("--version", std::string("mess ") + MESS_VERSION);
    app.require_subcommand(1);
    app.fallthrough();
    auto remember = [&](const char* key) {
        return [&ctx, key](const std::string& v) { ctx.flags[key] = v; };
    };
    app.add_option_function<std::string>("--data-root", remember("data_root"),
                                         "Data root directory (env MESS_DATA_ROOT; default ./data)");
    app.add_option_function<std::string>("--device", remember("device"), "Compute device: cpu | cuda (env MESS_DEVICE)");
    app.add_option_function<std::string>("--workers", remember("workers"), "Worker threads (env MESS_WORKERS; default: cores)");
    app.add_option_function<std::string>("--batch-size", remember("batch_size"), "Windows per model batch (env MESS_BATCH_SIZE; default 4, 32 on --device cuda)");
    app.add_option_function<std::string>("--log-level", remember("log_level"),
                                         "trace|debug|info|warn|error|off (env MESS_LOG_LEVEL; default info)");
    app.add_option_function<std::string>("--catalog", remember("catalog"),
                                         "Catalog database: sqlite:<file> | postgresql://… (env MESS_CATALOG; default sqlite:<data root>/catalog.sqlite)");

    cli::set_command_line(argc, argv);
    cli::register_config(app, ctx);
    cli::register_catalog(app, ctx);
    cli::register_runs(app, ctx);
    cli::register_audio(app, ctx);
    cli::register_model(app, ctx);
    cli::register_embed(app, ctx);
    cli::register_extract(app, ctx);
    cli::register_targets(app, ctx);
    cli::register_probe(app, ctx);
    cli::register_search(app, ctx);
    cli::register_eval(app, ctx);
    cli::register_align(app, ctx);
    cli::register_structure(app, ctx);
    cli::register_demo(app, ctx);
    cli::register_serve(app, ctx);
    cli::register_route(app, ctx);
    cli::register_listen(app, ctx);
    cli::register_train(app, ctx);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? 0 : 1;
    }
    try {
        ctx.config = resolve_config(ctx.flags);
        init_logging(ctx.config.log_level.value);
        return ctx.run ? ctx.run() : 1;
    } catch (const Error& e) {
        std::fprintf(stderr, "mess: error: %s\n", e.what());
        return exit_code(e.kind());
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "mess: error: out of memory\n");
        return 3;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mess: internal error: %s\n", e.what());
        return 3;
    }
}
