#include "teatree/common/bloom_filter.h"

#include <algorithm>
#include <functional>

namespace teatree {
namespace {

/// A second, independent hash derived from the first (the splitmix64 finalizer).
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

BloomFilter::BloomFilter(int64_t capacity)
    : capacity_(std::max<int64_t>(capacity, 1024)),
      words_(static_cast<size_t>((capacity_ * kBitsPerItem + 63) / 64), 0) {}

// Double hashing: probe i is h1 + i * h2 over the bit array.
template <typename Visit>
bool BloomFilter::Probe(std::string_view key, Visit visit) const {
  const uint64_t h1 = std::hash<std::string_view>{}(key);
  const uint64_t h2 = Mix(h1) | 1;
  const uint64_t bits = words_.size() * 64;
  for (int i = 0; i < kProbes; ++i) {
    const uint64_t bit = (h1 + i * h2) % bits;
    if (!visit(bit / 64, uint64_t{1} << (bit % 64))) return false;
  }
  return true;
}

void BloomFilter::Add(std::string_view key) {
  Probe(key, [&](size_t word, uint64_t mask) {
    words_[word] |= mask;
    return true;
  });
  ++size_;
}

bool BloomFilter::MayContain(std::string_view key) const {
  return Probe(key, [&](size_t word, uint64_t mask) { return (words_[word] & mask) != 0; });
}

}  // namespace teatree
