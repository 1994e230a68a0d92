#include "cli/store_commands.h"

#include <fmt/format.h>

#include <memory>
#include <string>

#include "cli/exit_code.h"
#include "cli/frost_home.h"
#include "cli/image_state.h"
#include "cli/json_writer.h"
#include "cli/text_format.h"

namespace frost::cli {

using store::FsckReport;
using store::GcReport;
using store::OwnerInfo;
using store::SnapshotInfo;
using store::StoreStats;

namespace {

void print_json(const JsonWriter& j) { fmt::print("{}\n", j.str()); }

// --- fsck -----------------------------------------------------------------------

void print_fsck_text(const std::string& path, const FsckReport& r) {
  fmt::print("fsck {}: checked {} snapshots, {} pages, {} index nodes\n", path,
             r.snapshots_checked, r.pages_checked, r.nodes_checked);
  for (const auto& note : r.notes) fmt::print("note: {}\n", note);
  for (const auto& damage : r.damage) fmt::print("damaged: {}\n", damage);
  if (r.clean()) {
    fmt::print("clean\n");
  } else {
    fmt::print("{} damaged item{} found\n", r.damage.size(), r.damage.size() == 1 ? "" : "s");
  }
}

void print_fsck_json(const std::string& path, const FsckReport& r) {
  JsonWriter j;
  j.begin_object().field("store", path).field("clean", r.clean());
  j.key("damage").begin_array();
  for (const auto& damage : r.damage) j.value(damage);
  j.end_array().key("notes").begin_array();
  for (const auto& note : r.notes) j.value(note);
  j.end_array();
  j.field("snapshots_checked", r.snapshots_checked)
      .field("pages_checked", r.pages_checked)
      .field("nodes_checked", r.nodes_checked)
      .end_object();
  print_json(j);
}

Result<int> run_fsck(const Context& ctx) {
  FROST_ASSIGN(auto store, ctx.open_store(StoreAccess::kRead));
  FROST_ASSIGN(FsckReport report, store->fsck());
  if (ctx.json) {
    print_fsck_json(store->path(), report);
  } else {
    print_fsck_text(store->path(), report);
  }
  return report.clean() ? kExitOk : kExitDamage;
}

// --- gc -------------------------------------------------------------------------

Result<int> run_gc(const Context& ctx) {
  FROST_ASSIGN(auto store, ctx.open_store(StoreAccess::kWrite));
  FROST_ASSIGN(GcReport r, store->gc());
  if (ctx.json) {
    JsonWriter j;
    j.begin_object()
        .field("store", store->path())
        .field("segments_cleaned", r.segments_cleaned)
        .field("segments_freed", r.segments_freed)
        .field("bytes_copied", r.bytes_copied)
        .field("segments_free_after", r.segments_free_after)
        .end_object();
    print_json(j);
  } else {
    fmt::print("gc {}: cleaned {} segments, freed {}, copied {}; {} segments free now\n",
               store->path(), r.segments_cleaned, r.segments_freed, format_bytes(r.bytes_copied),
               r.segments_free_after);
  }
  return kExitOk;
}

// --- stats ----------------------------------------------------------------------

void print_stats_text(const std::string& path, const StoreStats& s) {
  Table t({"store", path});
  t.add({"segments", fmt::format("{} used, {} free, {} total, {} each", s.segments_used,
                                 s.segments_free, s.segments_total, format_bytes(s.segment_size))});
  t.add({"live bytes", format_bytes(s.live_bytes)});
  t.add({"file bytes", format_bytes(s.file_bytes)});
  t.add({"utilisation", format_percent(s.utilisation) + " of used segments is live"});
  t.add({"bytes written", fmt::format("{} ({} new, {} by the cleaner)", format_bytes(s.bytes_written),
                                      format_bytes(s.bytes_new), format_bytes(s.bytes_cleaned))});
  t.add({"write cost", fmt::format("{:.2f} (bytes written per new byte)", s.write_cost)});
  t.add({"gc runs", fmt::format("{}", s.gc_runs)});
  t.add({"owners", fmt::format("{}", s.owners)});
  t.add({"snapshots", fmt::format("{}", s.snapshots)});
  fmt::print("{}", t.render());
}

void print_stats_json(const std::string& path, const StoreStats& s) {
  JsonWriter j;
  j.begin_object()
      .field("store", path)
      .field("segment_size", s.segment_size)
      .field("segments_total", s.segments_total)
      .field("segments_used", s.segments_used)
      .field("segments_free", s.segments_free)
      .field("live_bytes", s.live_bytes)
      .field("file_bytes", s.file_bytes)
      .field("utilisation", s.utilisation)
      .field("bytes_written", s.bytes_written)
      .field("bytes_new", s.bytes_new)
      .field("bytes_cleaned", s.bytes_cleaned)
      .field("write_cost", s.write_cost)
      .field("gc_runs", s.gc_runs)
      .field("owners", s.owners)
      .field("snapshots", s.snapshots)
      .end_object();
  print_json(j);
}

Result<int> run_stats(const Context& ctx) {
  FROST_ASSIGN(auto store, ctx.open_store(StoreAccess::kRead));
  StoreStats s = store->stats();
  if (ctx.json) {
    print_stats_json(store->path(), s);
  } else {
    print_stats_text(store->path(), s);
  }
  return kExitOk;
}

// --- ls -------------------------------------------------------------------------

void print_ls_text(const store::Store& store, const std::vector<OwnerInfo>& owners, const daemon::Registry* registry) {
  if (owners.empty()) {
    fmt::print("no snapshots in {}\n", store.path());
    return;
  }
  for (const auto& owner : owners) {
    size_t n = owner.snapshots.size();
    ImageState st = image_state(store, owner, registry);
    std::string process = st.pid > 0 ? fmt::format("pid {} {}, ", st.pid, st.state) : "";
    if (st.persistent) {
      process += fmt::format("persistent, {} every {}, ", st.policy,
                             st.every_ms == 0 ? "never" : fmt::format("{:g} s", double(st.every_ms) / 1000));
    }
    fmt::print("{}  ({}{} snapshot{}, keeps {})\n", owner.name, process, n, n == 1 ? "" : "s",
               owner.retention);
    Table t({"ID", "PARENT", "CREATED", "PAGES", "WRITTEN", "PINNED"});
    for (const SnapshotInfo& s : owner.snapshots) {
      t.add({fmt::format("{}", s.id), s.parent == 0 ? "-" : fmt::format("{}", s.parent),
             format_local_time(s.created_ns), fmt::format("{}", s.page_count),
             format_bytes(s.bytes_written), s.pinned ? "yes" : ""});
    }
    fmt::print("{}", t.render("  "));
  }
}

void write_snapshot_json(JsonWriter& j, const SnapshotInfo& s) {
  j.begin_object().field("id", s.id).key("parent");
  if (s.parent == 0) {
    j.null();
  } else {
    j.value(s.parent);
  }
  j.field("created_ns", s.created_ns)
      .field("created", format_utc_time(s.created_ns))
      .field("pages", s.page_count)
      .field("meta_bytes", s.meta_length)
      .field("bytes_written", s.bytes_written)
      .field("pinned", s.pinned)
      .end_object();
}

void print_ls_json(const store::Store& store, const std::vector<OwnerInfo>& owners, const daemon::Registry* registry) {
  JsonWriter j;
  j.begin_object().field("store", store.path()).key("owners").begin_array();
  for (const auto& owner : owners) {
    ImageState st = image_state(store, owner, registry);
    j.begin_object().field("name", owner.name).field("retention", owner.retention);
    if (st.pid > 0) j.field("pid", int64_t(st.pid)).field("state", st.state);
    j.field("persistent", st.persistent);
    if (st.persistent) j.field("policy", st.policy).field("every_ms", st.every_ms);
    j.key("snapshots").begin_array();
    for (const SnapshotInfo& s : owner.snapshots) write_snapshot_json(j, s);
    j.end_array().end_object();
  }
  j.end_array().end_object();
  print_json(j);
}

struct LsOptions {
  std::string owner;  // empty: every owner
};

Result<int> run_ls(const Context& ctx, const LsOptions& options) {
  FROST_ASSIGN(auto store, ctx.open_store(StoreAccess::kRead));
  std::vector<OwnerInfo> owners = store->list();
  if (!options.owner.empty()) {
    std::erase_if(owners, [&](const OwnerInfo& o) { return o.name != options.owner; });
    if (owners.empty()) return Error::not_found("no owner named '" + options.owner + "'");
  }
  // Read without the store's lock: frostd replaces it whole (atomic_file.h).
  Result<daemon::Registry> registry = daemon::Registry::load(frost_home());
  const daemon::Registry* reg = registry.ok() ? &*registry : nullptr;
  if (ctx.json) {
    print_ls_json(*store, owners, reg);
  } else {
    print_ls_text(*store, owners, reg);
  }
  return kExitOk;
}

}  // namespace

void add_fsck_command(CommandSet& set) {
  set.add("fsck", "verify every snapshot, page and index node; name what is damaged", run_fsck);
}

void add_gc_command(CommandSet& set) {
  set.add("gc", "run the cleaner now: free segments by copying their live blocks", run_gc);
}

void add_stats_command(CommandSet& set) {
  set.add("stats", "segments, bytes, utilisation, write cost, owners and snapshots", run_stats);
}

void add_ls_command(CommandSet& set) {
  auto options = std::make_shared<LsOptions>();
  CLI::App* sub = set.add("ls", "owners and their snapshots",
                          [options](const Context& ctx) { return run_ls(ctx, *options); });
  sub->add_option("owner", options->owner, "show only this owner");
}

}  // namespace frost::cli
