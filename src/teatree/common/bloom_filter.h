#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace teatree {

/// A set that answers "maybe present" or "certainly absent" in a few bits per item: the
/// request-id check consults it so that new ids (nearly all of them) skip the database lookup.
/// About 1% false positives at its capacity; no false negatives. Not thread-safe.
class BloomFilter {
 public:
  /// Sized for `capacity` items (at least 1024).
  explicit BloomFilter(int64_t capacity);

  void Add(std::string_view key);
  bool MayContain(std::string_view key) const;

  /// Items added so far; when it passes capacity() the false-positive rate climbs, so the
  /// owner should rebuild a larger filter.
  int64_t size() const { return size_; }
  int64_t capacity() const { return capacity_; }

 private:
  static constexpr int kProbes = 7;
  static constexpr int64_t kBitsPerItem = 10;

  /// Calls visit(word, mask) for each of the key's bits until it returns false; returns
  /// whether every call returned true.
  template <typename Visit>
  bool Probe(std::string_view key, Visit visit) const;

  int64_t capacity_;
  int64_t size_ = 0;
  std::vector<uint64_t> words_;
};

}  // namespace teatree
