#define BOOST_TEST_MODULE join_auth
#include <boost/test/unit_test.hpp>

#include "actors/node/join_auth.hpp"

using namespace troupe;

namespace {
std::string hex(const Digest& d) { return to_hex(std::string_view(reinterpret_cast<const char*>(d.data()), d.size())); }
}

// Expected digests: FIPS 180-2 examples and RFC 4231 test cases, checked with Python's hashlib/hmac.
BOOST_AUTO_TEST_CASE(sha256_known_answers) {
  BOOST_TEST(hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  BOOST_TEST(hex(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // 56 bytes: the padding spills into a second block.
  BOOST_TEST(hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  BOOST_TEST(hex(sha256(std::string(1000, 'a'))) ==
             "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

BOOST_AUTO_TEST_CASE(hmac_rfc4231) {
  BOOST_TEST(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")) ==
             "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  BOOST_TEST(hex(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // A key longer than the block is hashed first.
  BOOST_TEST(hex(hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")) ==
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

BOOST_AUTO_TEST_CASE(proofs_bind_token_nonce_and_name) {
  auto p = join_proof("secret", "nonce-1", "node-a");
  BOOST_TEST(hex(p) == hex(hmac_sha256("secret", "nonce-1node-a")));
  BOOST_TEST(hex(p) != hex(join_proof("Secret", "nonce-1", "node-a")));
  BOOST_TEST(hex(p) != hex(join_proof("secret", "nonce-2", "node-a")));
  BOOST_TEST(hex(p) != hex(join_proof("secret", "nonce-1", "node-b")));
}

BOOST_AUTO_TEST_CASE(constant_time_compare) {
  BOOST_TEST(equal_constant_time("abc", "abc"));
  BOOST_TEST(!equal_constant_time("abc", "abd"));
  BOOST_TEST(!equal_constant_time("abc", "abcd"));
  BOOST_TEST(equal_constant_time("", ""));
  auto r1 = random_bytes(32), r2 = random_bytes(32);
  BOOST_TEST(r1.size() == 32u);
  BOOST_TEST(r1 != r2);
}
