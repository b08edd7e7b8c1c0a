#include "routes.hpp"

namespace mess::server {

CatalogPool::CatalogPool(std::string url) : url_(std::move(url)) {}

std::unique_ptr<db::CatalogDb> CatalogPool::take() {
    {
        std::lock_guard lock(mutex_);
        if (!idle_.empty()) {
            auto db = std::move(idle_.back());
            idle_.pop_back();
            return db;
        }
    }
    return db::CatalogDb::open(url_);  // the schema is current: opening only checks it
}

void CatalogPool::give(std::unique_ptr<db::CatalogDb> db) {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(db));
}

}  // namespace mess::server
