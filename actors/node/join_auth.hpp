#pragma once
// The join handshake's cryptography: a node proves it knows the join token without sending it.
// proof = HMAC-SHA256(token, nonce || node name); the head compares proofs in constant time.
// SHA-256 (FIPS 180-4) and HMAC (RFC 2104) are small enough to carry here rather than add a TLS library.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe {

using Digest = std::array<std::uint8_t, 32>;

Digest sha256(std::string_view data);
Digest hmac_sha256(std::string_view key, std::string_view message);

// The proof a node sends for `nonce` (the head's challenge) under its name.
Digest join_proof(std::string_view token, std::string_view nonce, std::string_view node_name);

// Equal length and bytes; time depends only on the length (no early exit on the first difference).
bool equal_constant_time(std::string_view a, std::string_view b);

// `n` bytes from the OS's random source (std::random_device: /dev/urandom on Linux).
std::string random_bytes(std::size_t n);

std::string to_hex(std::string_view bytes);

}  // namespace troupe
