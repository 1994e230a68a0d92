// Every fixed-layout structure of the store file, declared once. The prose
// version, byte by byte, is docs/FORMAT.md; keep the two in step.
//
// File layout:
//   [0, 4096)                      superblock
//   [cr_offset[0], +cr_size)       checkpoint region A
//   [cr_offset[1], +cr_size)       checkpoint region B
//   [segment_base + i*segment_size) segment i, i < segment_count
// A segment holds one or more partial segments ("partials"), each:
//   PartialHeader (one 4 KiB block) | records (16-byte aligned) | SummaryEntry[] | pad to 4 KiB
// All integers are little-endian (the store is x86-64 only, like frost).
#pragma once

#include <cstddef>
#include <cstdint>

namespace frost::store {

inline constexpr uint32_t kBlockSize = 4096;
inline constexpr uint32_t kPageSize = 4096;
inline constexpr uint32_t kRecordAlign = 16;
inline constexpr uint32_t kFormatVersion = 2;  // 2: compact index nodes, 32-bit block checksums

inline constexpr uint64_t kSuperMagic = 0x31425354534f5246ull;       // "FROSTSB1"
inline constexpr uint64_t kPartialMagic = 0x31505454534f5246ull;     // "FROSTTP1"
inline constexpr uint64_t kCheckpointMagic = 0x31504354534f5246ull;  // "FROSTCP1"
inline constexpr uint32_t kNodeMagic = 0x32444f4e;                   // "NOD2"

inline constexpr uint32_t kNoSegment = 0xffffffffu;

enum class Codec : uint8_t { kNone = 0, kLz4 = 1, kZstd = 2 };

struct Superblock {
  uint64_t magic;
  uint32_t version;
  uint32_t block_size;
  uint8_t uuid[16];         // random per store; partials of another store never match
  uint64_t segment_size;    // bytes, a multiple of kBlockSize
  uint64_t segment_count;   // capacity in segments
  uint64_t segment_base;    // file offset of segment 0
  uint64_t cr_offset[2];    // checkpoint regions A and B
  uint64_t cr_size;         // bytes of each region
  uint64_t created_ns;      // CLOCK_REALTIME at creation
  uint8_t default_codec;    // Codec for new pages
  uint8_t reserved0[7];
  uint64_t reserved1[6];
  uint64_t checksum;        // XXH3-64 of all bytes before this field
};
static_assert(sizeof(Superblock) == 152);

// First block of every partial segment. It carries a copy of the superblock so
// that any segment can be read, and the store re-identified, on its own.
struct PartialHeader {
  uint64_t magic;
  uint64_t seq;             // log sequence number; +1 for every partial
  uint64_t prev_hash;       // header_checksum of the previous partial: a hash chain
  uint32_t segment;         // index of the segment this partial is in
  uint32_t offset;          // of this partial within its segment
  uint32_t length;          // whole partial: header, records, summary, padding
  uint32_t data_length;     // bytes of records after the header (multiple of 16)
  uint32_t entry_count;     // SummaryEntry count, located right after the records
  uint32_t next_segment;    // where the log continues when this segment is full
  uint64_t summary_checksum;  // XXH3-64 of the SummaryEntry array
  uint64_t written_ns;
  Superblock super;         // replicated superblock fields
  uint64_t durable_seq;     // every partial up to this seq was synced before this one was written
  uint64_t reserved[3];
  uint64_t header_checksum;   // XXH3-64 of all bytes before this field
};
static_assert(sizeof(PartialHeader) == 256);
// Records start right after the header; a partial is a whole number of blocks,
// so the smallest (one op record) takes one 4 KiB block.
inline constexpr uint32_t kPartialHeaderSize = sizeof(PartialHeader);
inline constexpr uint32_t kMinPartial = kBlockSize;

enum class RecordKind : uint8_t {
  kPage = 1,        // one 4 KiB page (or meta chunk), maybe compressed
  kNode = 2,        // a page index node
  kCommit = 3,      // CommitRecord: a snapshot becomes durable
  kOp = 4,          // OpRecord: delete, pin, retention, root update
};

enum class Tree : uint8_t { kPages = 0, kMeta = 1 };

struct SummaryEntry {
  uint8_t kind;       // RecordKind
  uint8_t tree;       // Tree, for pages and nodes
  uint8_t level;      // for nodes: 0 = leaf
  uint8_t codec;      // Codec of the stored bytes
  uint32_t owner;     // owner id
  uint64_t key;       // page: vpn / chunk index; node: first key covered; commit/op: snapshot id
  uint64_t epoch;     // id of the snapshot that wrote the record
  uint32_t offset;    // within the segment
  uint32_t length;    // stored bytes (before alignment padding)
  uint64_t checksum;  // block_checksum of the stored bytes (32 bits; the high half is 0)
};
static_assert(sizeof(SummaryEntry) == 40);

// A pointer in the page index: where a page or child node is, and its checksum,
// so every read is verified without consulting the summary (a Merkle tree).
struct IndexEntry {
  uint64_t word;      // bits 0-41: file offset / 16; 42-57: stored length;
                      // 58-59: Codec; 60: zero page (no block)
  uint64_t checksum;  // block_checksum of the stored bytes (32 bits; the high half is 0)

  static constexpr uint64_t kZeroBit = 1ull << 60;
  bool empty() const { return word == 0 && checksum == 0; }
  bool zero() const { return (word & kZeroBit) != 0; }
  uint64_t offset() const { return (word & ((1ull << 42) - 1)) * 16; }
  uint32_t length() const { return static_cast<uint32_t>((word >> 42) & 0xffff); }
  Codec codec() const { return static_cast<Codec>((word >> 58) & 3); }
  static IndexEntry make(uint64_t offset, uint32_t length, Codec codec, uint64_t checksum) {
    return {(offset / 16) | (uint64_t(length) << 42) | (uint64_t(codec) << 58), checksum};
  }
  static IndexEntry zero_page() { return {kZeroBit, 0}; }
  bool operator==(const IndexEntry&) const = default;
};
static_assert(sizeof(IndexEntry) == 16);

// The page index is a radix tree of kLevels levels, kFanout slots each, keyed
// by a 48-bit key (virtual page number): enough for 5-level paging.
inline constexpr int kFanoutBits = 8;
inline constexpr int kFanout = 1 << kFanoutBits;
inline constexpr int kLevels = 6;
inline constexpr uint64_t kMaxKey = (1ull << (kFanoutBits * kLevels)) - 1;

// A node record: NodeHeader, then (unless every slot is present) a bitmap of
// kFanout bits saying which slots are, then the present slots' entries in
// slot order, grouped in runs. Nodes are rewritten on every path to a changed
// page, so they are encoded compactly: a run is a head byte (kRun*), then
//   count      varint, unless kRunSingle (count 1)
//   jump       zigzag varint, if kRunJump: the first entry's offset/16 minus
//              where the previous entry's record ended (its footprint); without
//              it the run starts right there. Later entries of a run follow
//              each other in the log, so their offsets are implied.
//   length     varint, if kRunLengthShared: the stored length of every entry
// and then per entry: a varint length if kRunLengthEach, and the 4-byte
// checksum (little-endian). A run of zero pages (kRunZero) has only the head
// and the count. Varints are LEB128. The decoder rejects anything else: an
// unknown bit, trailing bytes, a count that disagrees with the bitmap.
struct NodeHeader {
  uint32_t magic;     // kNodeMagic
  uint8_t level;      // 0 = leaf (entries point at pages)
  uint8_t tree;       // Tree
  uint16_t count;     // present slots, 1..kFanout; kFanout: no bitmap follows
};
static_assert(sizeof(NodeHeader) == 8);
inline constexpr size_t kNodeBitmapBytes = kFanout / 8;

inline constexpr uint8_t kRunCodecMask = 0x03;      // Codec of every entry
inline constexpr uint8_t kRunZero = 0x04;           // zero pages: no block, nothing else stored
inline constexpr uint8_t kRunLengthMask = 0x18;
inline constexpr uint8_t kRunLengthPage = 0x00;     // every entry is kPageSize bytes
inline constexpr uint8_t kRunLengthShared = 0x08;   // one length for the run
inline constexpr uint8_t kRunLengthEach = 0x10;     // a length per entry
inline constexpr uint8_t kRunJump = 0x20;
inline constexpr uint8_t kRunSingle = 0x40;

struct CommitRecord {
  uint64_t snapshot;
  uint64_t parent;        // 0 = none
  uint32_t owner;
  uint16_t owner_name_length;  // the name follows the record
  uint16_t retired_count;      // then this many u64 ids retention deletes with this commit
  uint64_t created_ns;
  IndexEntry page_root;
  IndexEntry meta_root;
  uint64_t meta_length;
  uint64_t page_count;    // present pages, zero pages included
  uint64_t bytes_written; // record bytes this snapshot added to the log
};
static_assert(sizeof(CommitRecord) == 88);

enum class OpKind : uint32_t {
  kDelete = 1,        // snapshot
  kPin = 2,           // snapshot
  kUnpin = 3,         // snapshot
  kRetention = 4,     // owner, arg = K
  kRootUpdate = 5,    // snapshot; the cleaner moved its index: new roots follow
  kDeleteOwner = 6,   // owner (all its snapshots already deleted)
};

struct OpRecord {
  uint32_t op;        // OpKind
  uint32_t owner;
  uint64_t snapshot;
  uint64_t arg;
  IndexEntry page_root;  // kRootUpdate only
  IndexEntry meta_root;  // kRootUpdate only
};
static_assert(sizeof(OpRecord) == 56);

// Checkpoint region: CheckpointHeader, then the owner table, the snapshot
// table and the segment usage table, back to back.
struct CheckpointHeader {
  uint64_t magic;
  uint64_t cp_seq;            // +1 per checkpoint; the newer valid region wins
  uint64_t payload_length;
  uint64_t payload_checksum;
  // Where the log continues: roll-forward starts here.
  uint64_t log_seq;           // seq of the next partial
  uint64_t prev_hash;         // header_checksum of the last partial before it
  uint32_t head_segment;
  uint32_t head_offset;
  uint32_t next_segment;
  uint32_t default_retention;
  uint64_t next_snapshot;
  uint32_t next_owner;
  uint32_t owner_count;
  uint64_t snapshot_count;
  uint64_t segment_count;
  uint64_t bytes_written;     // all record bytes ever appended to the log
  uint64_t bytes_new;         // of them, new data (pages, meta) from callers
  uint64_t bytes_cleaned;     // of them, copied by the cleaner
  uint64_t gc_runs;
  uint64_t written_ns;
  uint64_t reserved[4];
  uint64_t header_checksum;   // XXH3-64 of all bytes before this field
};
static_assert(sizeof(CheckpointHeader) == 176);

struct OwnerRecord {
  uint32_t id;
  uint32_t retention;     // keep the last K snapshots; 0 = store default
  uint16_t name_length;   // the name follows
  uint16_t reserved[3];
};
static_assert(sizeof(OwnerRecord) == 16);

struct SnapshotRecord {
  uint64_t id;
  uint64_t parent;
  uint32_t owner;
  uint32_t flags;         // kSnapshotPinned
  uint64_t created_ns;
  IndexEntry page_root;
  IndexEntry meta_root;
  uint64_t meta_length;
  uint64_t page_count;
  uint64_t bytes_written;
};
static_assert(sizeof(SnapshotRecord) == 88);
inline constexpr uint32_t kSnapshotPinned = 1;

enum class SegmentState : uint8_t { kFree = 0, kUsed = 1 };

struct SegmentUsage {
  uint32_t live_bytes;     // bytes of records some snapshot still references
  uint8_t state;           // SegmentState
  uint8_t reserved[3];
  uint64_t last_seq;       // seq of the last partial written to it (its age)
};
static_assert(sizeof(SegmentUsage) == 16);

inline constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace frost::store
