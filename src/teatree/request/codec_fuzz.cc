// libFuzzer target: the request codec on arbitrary bytes. Whatever it decodes must encode to
// a canonical text that decodes again to the same request and the same text, since queued
// requests, payload hashes and duplicate detection all rely on that round trip.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "teatree/request/codec.h"

namespace {

[[noreturn]] void Fail(const char* what, std::string_view input, const std::string& detail) {
  std::fprintf(stderr, "codec_fuzz: %s\ninput: %.*s\ndetail: %s\n", what,
               static_cast<int>(input.size()), input.data(), detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto decoded = teatree::DecodeRequest(input);
  if (!decoded.ok()) return 0;
  const std::string encoded = teatree::EncodeRequest(*decoded);
  auto again = teatree::DecodeRequest(encoded);
  if (!again.ok()) {
    Fail("the encoding of a decoded request does not decode", input,
         encoded + " -> " + again.status().ToString());
  }
  const std::string reencoded = teatree::EncodeRequest(*again);
  if (reencoded != encoded) {
    Fail("encoding is not stable across a round trip", input, encoded + " != " + reencoded);
  }
  if (teatree::PayloadHash(*again) != teatree::PayloadHash(*decoded)) {
    Fail("the payload hash changed across a round trip", input, encoded);
  }
  return 0;
}
