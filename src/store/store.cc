// The public face of the store: forwards to StoreImpl.
#include "store/store.h"

#include "store/store_impl.h"

namespace frost::store {

Store::Store(std::unique_ptr<StoreImpl> impl) : impl_(std::move(impl)) {}
Store::~Store() {
  // A clean close leaves a checkpoint, so the next open has nothing to roll forward.
  (void)impl_->checkpoint();
}

Result<std::unique_ptr<Store>> Store::create(const std::string& path, const StoreOptions& options) {
  {
    FROST_ASSIGN(auto file, options.env->open_file(path, OpenMode::kCreateExclusive));
    FROST_TRY(StoreImpl::initialise(*file, *options.env, path, options));
  }
  return open(path, options);
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path, const StoreOptions& options) {
  auto impl = std::make_unique<StoreImpl>(path, options);
  FROST_TRY(impl->open());
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<std::unique_ptr<Store>> Store::open_or_create(const std::string& path, const StoreOptions& options) {
  if (!options.env->exists(path)) return create(path, options);
  {
    // A creation cut short before its first sync leaves an empty file: finish it.
    FROST_ASSIGN(auto file, options.env->open_file(path, OpenMode::kReadWrite));
    FROST_ASSIGN(uint64_t size, file->size());
    if (size == 0 && !options.read_only) {
      FROST_TRY(file->lock_exclusive());
      FROST_TRY(StoreImpl::initialise(*file, *options.env, path, options));
    }
  }
  return open(path, options);
}

Result<std::unique_ptr<SnapshotWriter>> Store::begin_snapshot(const std::string& owner,
                                                              std::optional<SnapshotId> parent) {
  return impl_->begin_snapshot(owner, parent);
}
std::vector<OwnerInfo> Store::list() const { return impl_->list(); }
Result<SnapshotInfo> Store::info(SnapshotId id) const { return impl_->info(id); }
Result<SnapshotId> Store::latest(const std::string& owner) const { return impl_->latest(owner); }
Result<SnapshotId> Store::latest_intact(const std::string& owner) const { return impl_->latest_intact(owner); }
Result<bool> Store::read_page(SnapshotId id, uint64_t vpn, std::span<uint8_t, kPageSize> out) const {
  return impl_->read_page(id, vpn, out);
}
Status Store::for_each_page(SnapshotId id,
                            const std::function<Status(uint64_t, std::span<const uint8_t, kPageSize>)>& fn) const {
  return impl_->for_each_page(id, 0, kMaxKey, fn);
}
Status Store::for_each_page_in(SnapshotId id, uint64_t first, uint64_t last,
                               const std::function<Status(uint64_t, std::span<const uint8_t, kPageSize>)>& fn) const {
  return impl_->for_each_page(id, first, last, fn);
}
Result<bool> Store::has_pages(SnapshotId id, uint64_t first, uint64_t last) const {
  return impl_->has_pages(id, first, last);
}
Result<std::vector<uint64_t>> Store::page_numbers(SnapshotId id) const { return impl_->page_numbers(id); }
Result<std::vector<uint8_t>> Store::read_meta(SnapshotId id) const { return impl_->read_meta(id); }
Status Store::verify(SnapshotId id) const { return impl_->verify(id); }
Status Store::pin(SnapshotId id) { return impl_->pin(id, true); }
Status Store::unpin(SnapshotId id) { return impl_->pin(id, false); }
Status Store::remove(SnapshotId id) { return impl_->remove(id); }
Status Store::remove_owner(const std::string& owner) { return impl_->remove_owner(owner); }
Status Store::set_retention(const std::string& owner, uint32_t keep) { return impl_->set_retention(owner, keep); }
Status Store::hold(SnapshotId id) { return impl_->hold(id); }
void Store::release(SnapshotId id) { impl_->release(id); }
Result<GcReport> Store::gc() { return impl_->gc(true); }
Status Store::checkpoint() { return impl_->checkpoint(); }
Result<FsckReport> Store::fsck() const { return impl_->fsck(); }
StoreStats Store::stats() const { return impl_->stats(); }
const std::string& Store::path() const { return impl_->path(); }

SnapshotWriter::~SnapshotWriter() {
  if (!done_) store_->abort(id_);
}
Status SnapshotWriter::put_page(uint64_t vpn, std::span<const uint8_t, kPageSize> data) {
  if (done_) return Error::invalid("snapshot already committed");
  return store_->put_page(id_, vpn, data);
}
Status SnapshotWriter::put_pages(uint64_t first_vpn, std::span<const uint8_t> pages) {
  if (done_) return Error::invalid("snapshot already committed");
  return store_->put_pages(id_, first_vpn, pages);
}
Status SnapshotWriter::remove_pages(uint64_t first, uint64_t last) {
  if (done_) return Error::invalid("snapshot already committed");
  return store_->remove_pages(id_, first, last);
}
Status SnapshotWriter::put_meta(std::span<const uint8_t> bytes) {
  if (done_) return Error::invalid("snapshot already committed");
  return store_->put_meta(id_, bytes);
}
Result<SnapshotId> SnapshotWriter::commit() {
  if (done_) return Error::invalid("snapshot already committed");
  auto r = store_->commit(id_);
  if (r.ok()) done_ = true;
  return r;
}

}  // namespace frost::store
