#include "store/page_index.h"

#include <array>
#include <bit>
#include <cstring>
#include <string>

namespace frost::store {

// --- node encoding (format.h: NodeHeader and the kRun* bits) ------------------

namespace {

constexpr uint64_t kOffsetUnits = 1ull << 42;  // IndexEntry offsets are offset/16 in 42 bits

uint64_t footprint_units(uint32_t length) { return (uint64_t(length) + kRecordAlign - 1) / kRecordAlign; }
uint64_t zigzag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
int64_t unzigzag(uint64_t v) { return int64_t(v >> 1) ^ -int64_t(v & 1); }

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(uint8_t(v) | 0x80);
    v >>= 7;
  }
  out.push_back(uint8_t(v));
}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; i++) out.push_back(uint8_t(v >> (8 * i)));
}

// Bytes of a node being decoded; every read is bounds-checked.
struct NodeReader {
  const uint8_t* p;
  const uint8_t* end;

  bool u8(uint8_t* v) {
    if (p == end) return false;
    *v = *p++;
    return true;
  }
  bool u32(uint32_t* v) {
    if (end - p < 4) return false;
    *v = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    p += 4;
    return true;
  }
  bool varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!u8(&b)) return false;
      if (shift == 63 && b > 1) return false;  // more than 64 bits
      r |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *v = r;
        return true;
      }
    }
    return false;
  }
};

// One run: consecutive present slots whose entries are all zero pages, or all
// of one codec and stored back to back in the log.
struct Run {
  size_t first = 0, count = 0;  // indexes into the present entries
};

bool continues(const IndexEntry& prev, const IndexEntry& e) {
  if (prev.zero() || e.zero()) return prev.zero() && e.zero();
  return e.codec() == prev.codec() && e.offset() / kRecordAlign == prev.offset() / kRecordAlign + footprint_units(prev.length());
}

uint8_t length_form(std::span<const IndexEntry> run) {
  bool page = true, shared = true;
  for (const auto& e : run) {
    page &= e.length() == kPageSize;
    shared &= e.length() == run[0].length();
  }
  return page ? kRunLengthPage : shared ? kRunLengthShared : kRunLengthEach;
}

void encode_run(std::vector<uint8_t>& out, std::span<const IndexEntry> run, uint64_t* prev_end) {
  uint8_t head = run.size() == 1 ? kRunSingle : 0;
  if (run[0].zero()) {
    out.push_back(head | kRunZero);
    if (run.size() > 1) put_varint(out, run.size());
    return;
  }
  uint64_t start = run[0].offset() / kRecordAlign;
  uint8_t form = length_form(run);
  head |= uint8_t(run[0].codec()) | form | (start != *prev_end ? kRunJump : 0);
  out.push_back(head);
  if (run.size() > 1) put_varint(out, run.size());
  if (start != *prev_end) put_varint(out, zigzag(int64_t(start - *prev_end)));
  if (form == kRunLengthShared) put_varint(out, run[0].length());
  for (const auto& e : run) {
    if (form == kRunLengthEach) put_varint(out, e.length());
    put_u32(out, uint32_t(e.checksum));
  }
  const IndexEntry& last = run.back();
  *prev_end = last.offset() / kRecordAlign + footprint_units(last.length());
}

Error bad_node(const char* what) { return Error::corruption(std::string("index node: ") + what); }

// Decodes one run into out (count entries at most); prev_end as in encode_run.
Status decode_run(NodeReader& r, size_t room, int level, uint64_t* prev_end, std::vector<IndexEntry>& out) {
  uint8_t head;
  if (!r.u8(&head)) return bad_node("truncated run");
  if (head & 0x80) return bad_node("unknown run flag");
  uint64_t count = 1;
  if (!(head & kRunSingle) && (!r.varint(&count) || count == 0)) return bad_node("bad run count");
  if (count > room) return bad_node("more entries than its count");
  if (head & kRunZero) {
    if ((head & ~(kRunZero | kRunSingle)) != 0) return bad_node("zero run with other flags");
    if (level > 0) return bad_node("a zero child above the leaves");
    out.insert(out.end(), count, IndexEntry::zero_page());
    return Status::Ok();
  }
  Codec codec = Codec(head & kRunCodecMask);
  if (codec > Codec::kZstd) return bad_node("unknown codec");
  uint8_t form = head & kRunLengthMask;
  if (form != kRunLengthPage && form != kRunLengthShared && form != kRunLengthEach) return bad_node("unknown length form");
  uint64_t at = *prev_end;
  if (head & kRunJump) {
    uint64_t z;
    if (!r.varint(&z)) return bad_node("truncated offset");
    int64_t jump = unzigzag(z);
    // prev_end is below 2^43, so neither comparison can overflow.
    if (jump < -int64_t(at) || jump >= int64_t(kOffsetUnits) - int64_t(at)) return bad_node("offset out of range");
    at = uint64_t(int64_t(at) + jump);
  }
  uint64_t length = kPageSize;
  if (form == kRunLengthShared && !r.varint(&length)) return bad_node("truncated length");
  for (uint64_t i = 0; i < count; i++) {
    if (form == kRunLengthEach && !r.varint(&length)) return bad_node("truncated length");
    if (length == 0 || length > 0xffff) return bad_node("bad stored length");
    if (at >= kOffsetUnits) return bad_node("offset out of range");
    uint32_t sum;
    if (!r.u32(&sum)) return bad_node("truncated checksum");
    out.push_back(IndexEntry::make(at * kRecordAlign, uint32_t(length), codec, sum));
    at += footprint_units(uint32_t(length));
  }
  *prev_end = at;
  return Status::Ok();
}

}  // namespace

std::vector<uint8_t> encode_node(const Node& n) {
  std::array<uint8_t, kNodeBitmapBytes> bitmap{};
  std::vector<IndexEntry> present;
  for (int i = 0; i < kFanout; i++) {
    if (n.slot[i].empty()) continue;
    bitmap[i / 8] |= uint8_t(1u << (i % 8));
    present.push_back(n.slot[i]);
  }
  NodeHeader h{kNodeMagic, n.level, uint8_t(n.tree), uint16_t(present.size())};
  std::vector<uint8_t> out(sizeof(h));
  std::memcpy(out.data(), &h, sizeof(h));
  if (present.size() < size_t(kFanout)) out.insert(out.end(), bitmap.begin(), bitmap.end());
  uint64_t prev_end = 0;
  for (size_t b = 0; b < present.size();) {
    size_t e = b + 1;
    while (e < present.size() && continues(present[e - 1], present[e])) e++;
    encode_run(out, std::span(present).subspan(b, e - b), &prev_end);
    b = e;
  }
  return out;
}

Result<Node> decode_node(std::span<const uint8_t> bytes, int level, Tree tree) {
  NodeHeader h;
  if (bytes.size() < sizeof(h)) return bad_node("too short");
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (h.magic != kNodeMagic) return Error::corruption("index node magic mismatch");
  if (h.level != level || h.tree != uint8_t(tree)) return Error::corruption("index node at the wrong level or tree");
  if (h.count == 0 || h.count > kFanout) return bad_node("bad count");
  NodeReader r{bytes.data() + sizeof(h), bytes.data() + bytes.size()};
  std::array<uint8_t, kNodeBitmapBytes> bitmap;
  bitmap.fill(0xff);
  if (h.count < kFanout) {
    if (size_t(r.end - r.p) < bitmap.size()) return bad_node("truncated bitmap");
    std::memcpy(bitmap.data(), r.p, bitmap.size());
    r.p += bitmap.size();
    int bits = 0;
    for (uint8_t b : bitmap) bits += std::popcount(b);
    if (bits != h.count) return Error::corruption("index node count does not match its bitmap");
  }
  std::vector<IndexEntry> entries;
  entries.reserve(h.count);
  uint64_t prev_end = 0;
  while (entries.size() < h.count) FROST_TRY(decode_run(r, h.count - entries.size(), level, &prev_end, entries));
  if (r.p != r.end) return bad_node("trailing bytes");
  Node n;
  n.level = uint8_t(level);
  n.tree = tree;
  size_t k = 0;
  for (int i = 0; i < kFanout; i++)
    if (bitmap[i / 8] >> (i % 8) & 1) n.slot[i] = entries[k++];
  return n;
}

// --- RangeSet ------------------------------------------------------------------

void RangeSet::add(uint64_t first, uint64_t last) {
  if (first > last) return;
  // Merge with every range that overlaps or touches [first, last].
  auto it = r_.upper_bound(first);
  if (it != r_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= first || prev->second + 1 == first) it = prev;
  }
  while (it != r_.end() && (last == UINT64_MAX || it->first <= last + 1)) {
    first = std::min(first, it->first);
    last = std::max(last, it->second);
    it = r_.erase(it);
  }
  r_[first] = last;
}

bool RangeSet::contains(uint64_t key) const { return overlaps(key, key); }

bool RangeSet::overlaps(uint64_t first, uint64_t last) const {
  auto it = r_.upper_bound(last);
  if (it == r_.begin()) return false;
  return std::prev(it)->second >= first;
}

bool RangeSet::covers(uint64_t first, uint64_t last) const {
  auto it = r_.upper_bound(first);
  if (it == r_.begin()) return false;
  --it;
  return it->first <= first && it->second >= last;
}

// --- reading -------------------------------------------------------------------

Result<IndexEntry> index_lookup(const NodeSource& src, Tree tree, IndexEntry root, uint64_t key) {
  if (key > kMaxKey) return IndexEntry{};
  IndexEntry e = root;
  for (int level = kRootLevel; level >= 0 && !e.empty(); level--) {
    FROST_ASSIGN(auto node, src.load_node(e, level, tree));
    e = node->slot[slot_of(key, level)];
  }
  return e;
}

namespace {

Status walk(const NodeSource& src, Tree tree, const IndexEntry& e, int level, uint64_t base,
            const std::function<Status(uint64_t, const IndexEntry&)>& fn) {
  FROST_ASSIGN(auto node, src.load_node(e, level, tree));
  for (int i = 0; i < kFanout; i++) {
    const IndexEntry& c = node->slot[i];
    if (c.empty()) continue;
    uint64_t key = base + uint64_t(i) * slot_span(level);
    if (level == 0) {
      FROST_TRY(fn(key, c));
    } else {
      FROST_TRY(walk(src, tree, c, level - 1, key, fn));
    }
  }
  return Status::Ok();
}

Status visit(const NodeSource& src, Tree tree, const IndexEntry& e, int level, uint64_t base, const IndexVisitor& v,
             std::unordered_set<uint64_t>* seen) {
  if (seen && !seen->insert(e.offset()).second) return Status::Ok();
  if (v.on_node) FROST_TRY(v.on_node(e, level, base));
  FROST_ASSIGN(auto node, src.load_node(e, level, tree));
  for (int i = 0; i < kFanout; i++) {
    const IndexEntry& c = node->slot[i];
    if (c.empty()) continue;
    uint64_t key = base + uint64_t(i) * slot_span(level);
    if (level > 0) {
      FROST_TRY(visit(src, tree, c, level - 1, key, v, seen));
    } else if (!c.zero() && (!seen || seen->insert(c.offset()).second) && v.on_page) {
      FROST_TRY(v.on_page(c, key));
    }
  }
  return Status::Ok();
}

}  // namespace

Status index_walk(const NodeSource& src, Tree tree, IndexEntry root,
                  const std::function<Status(uint64_t key, const IndexEntry& e)>& fn) {
  if (root.empty()) return Status::Ok();
  return walk(src, tree, root, kRootLevel, 0, fn);
}

Status index_visit_all(const NodeSource& src, Tree tree, IndexEntry root, const IndexVisitor& v,
                       std::unordered_set<uint64_t>* seen) {
  if (root.empty()) return Status::Ok();
  return visit(src, tree, root, kRootLevel, 0, v, seen);
}

// --- building ------------------------------------------------------------------

namespace {

using PutIt = std::map<uint64_t, IndexEntry>::const_iterator;

struct Builder {
  const NodeSource& src;
  NodeSink& sink;
  Tree tree;
  const std::map<uint64_t, IndexEntry>& puts;
  const RangeSet& removed;
  IndexBuild out;

  Result<IndexEntry> build(int level, uint64_t base, const IndexEntry& parent, PutIt b, PutIt e) {
    uint64_t last = base + slot_span(level) * kFanout - 1;
    bool removes = removed.overlaps(base, last);
    if (b == e && !removes) return parent;
    if (b == e && removed.covers(base, last)) {
      if (!parent.empty()) {
        FROST_TRY(walk(src, tree, parent, level, base, [&](uint64_t, const IndexEntry&) {
          out.page_delta--;
          return Status::Ok();
        }));
      }
      return IndexEntry{};
    }

    Node node;
    node.level = uint8_t(level);
    node.tree = tree;
    if (!parent.empty()) {
      FROST_ASSIGN(auto old, src.load_node(parent, level, tree));
      node = *old;
    }
    bool changed = false;
    for (int i = 0; i < kFanout; i++) {
      uint64_t cbase = base + uint64_t(i) * slot_span(level);
      uint64_t clast = cbase + slot_span(level) - 1;
      PutIt ce = b;
      while (ce != e && ce->first <= clast) ++ce;
      IndexEntry next = node.slot[i];
      if (level == 0) {
        if (b != ce) next = b->second;
        else if (removes && removed.contains(cbase)) next = IndexEntry{};
      } else if (b != ce || (removes && removed.overlaps(cbase, clast))) {
        FROST_ASSIGN(next, build(level - 1, cbase, node.slot[i], b, ce));
      }
      if (!(next == node.slot[i])) {
        if (level == 0) out.page_delta += int(node.slot[i].empty()) - int(next.empty());
        node.slot[i] = next;
        changed = true;
      }
      b = ce;
    }
    if (!changed) return parent;
    bool any = false;
    for (const auto& s : node.slot) any |= !s.empty();
    if (!any) return IndexEntry{};
    FROST_ASSIGN(IndexEntry written, sink.write_node(node, base));
    out.nodes_written++;
    out.node_bytes += written.length();
    out.new_nodes.push_back(written);
    return written;
  }
};

}  // namespace

Result<IndexBuild> index_build(const NodeSource& src, NodeSink& sink, Tree tree, IndexEntry parent,
                               const std::map<uint64_t, IndexEntry>& puts, const RangeSet& removed) {
  if (!puts.empty() && puts.rbegin()->first > kMaxKey) return Error::invalid("page number beyond 48 bits");
  Builder b{src, sink, tree, puts, removed, {}};
  FROST_ASSIGN(b.out.root, b.build(kRootLevel, 0, parent, puts.begin(), puts.end()));
  return std::move(b.out);
}

// --- what a snapshot alone holds ----------------------------------------------

namespace {

Status exclusive(const NodeSource& src, Tree tree, const IndexEntry& e, int level,
                 const std::vector<IndexEntry>& others, const std::function<void(const IndexEntry&)>& fn) {
  if (e.empty() || e.zero()) return Status::Ok();
  for (const auto& o : others)
    if (o == e) return Status::Ok();  // shared: everything below is referenced too
  fn(e);
  if (level < 0) return Status::Ok();
  FROST_ASSIGN(auto node, src.load_node(e, level, tree));
  std::vector<std::shared_ptr<const Node>> other_nodes;
  for (const auto& o : others) {
    if (o.empty() || o.zero()) continue;
    auto n = src.load_node(o, level, tree);
    if (n.ok()) other_nodes.push_back(*n);  // a damaged neighbour shares nothing
  }
  std::vector<IndexEntry> child_others;
  for (int i = 0; i < kFanout; i++) {
    if (node->slot[i].empty()) continue;
    child_others.clear();
    for (const auto& on : other_nodes)
      if (!on->slot[i].empty()) child_others.push_back(on->slot[i]);
    FROST_TRY(exclusive(src, tree, node->slot[i], level - 1, child_others, fn));
  }
  return Status::Ok();
}

}  // namespace

Status index_exclusive(const NodeSource& src, Tree tree, IndexEntry root, const std::vector<IndexEntry>& others,
                       const std::function<void(const IndexEntry& e)>& fn) {
  return exclusive(src, tree, root, kRootLevel, others, fn);
}

}  // namespace frost::store
