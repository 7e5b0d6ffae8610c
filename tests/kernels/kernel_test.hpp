#pragma once
// A tiny registry for the kernel test program (it runs on the GPU machine, which has no Boost): each
// *_test.cu / *_test.cpp file here registers cases with KERNEL_TEST; main.cpp runs them (optionally those
// whose name contains argv[1]) and exits non-zero when any check failed.
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace troupe::kernel_test {

struct Case {
  std::string name;
  std::function<void()> fn;
};
std::vector<Case>& registry();
int& failures();

struct Register {
  Register(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

// Compares got against want elementwise: |got - want| <= atol + rtol * |want|. Prints the worst element
// and returns false on a mismatch (counted as a failure).
bool check_close(const char* what, const std::vector<float>& got, const std::vector<float>& want, float atol,
                 float rtol);
bool check(bool ok, const char* what);

}  // namespace troupe::kernel_test

#define KT_CAT2(a, b) a##b
#define KT_CAT(a, b) KT_CAT2(a, b)
#define KERNEL_TEST(name)                                                                         \
  static void name();                                                                             \
  static ::troupe::kernel_test::Register KT_CAT(kt_reg_, name)(#name, name);                     \
  static void name()
