// Python str semantics over UTF-8: Python strings index, slice, count and strip by code point,
// so templates that do `content[:10]` or `|length` must not see bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::tmpl::text {

char32_t decode_one(std::string_view s, size_t& i);  // advances i; invalid bytes decode as themselves
void encode_one(std::string& out, char32_t cp);
std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
size_t length(std::string_view s);  // in code points
bool is_space(char32_t c);          // Python str.isspace()

std::string strip(std::string_view s, std::optional<std::string_view> chars, bool left, bool right);
std::vector<std::string> split(std::string_view s, std::optional<std::string_view> sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, std::optional<std::string_view> sep, int64_t maxsplit);
std::string replace(std::string_view s, std::string_view from, std::string_view to, int64_t count);
int64_t count(std::string_view s, std::string_view sub);
int64_t find(std::string_view s, std::string_view sub, bool reverse);  // code-point index or -1
// Case mapping covers ASCII, Latin-1, Greek and Cyrillic; other scripts are left as they are.
std::string lower(std::string_view s);
std::string upper(std::string_view s);
std::string title(std::string_view s);
std::string capitalize(std::string_view s);

}  // namespace troupe::tmpl::text
