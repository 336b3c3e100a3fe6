/*  bk_tests.h - selftests of broker/ modules: X(name) where name_test exists */
#define BK_TESTS(X)
