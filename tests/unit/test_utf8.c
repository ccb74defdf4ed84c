/*
 * Unit tests of utf8 (src/common/utf8.h): valid text passes unchanged,
 * every maximal invalid subpart becomes one U+FFFD, a character cut by the
 * cap is dropped (cut=1) or replaced (cut=0), and the output is always
 * valid UTF-8.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

#define FFFD "\xEF\xBF\xBD"

/* ------------------------------------------------------------ helpers */

/* Repair in[0..len) and check the result equals want[0..want_len). */
static void check_repair_n(const char *in, size_t len, int cut, const char *want, size_t want_len)
{
    struct buf out = BUF_INIT;
    assert_int_equal(utf8_repair(in, len, cut, &out), 0);
    if (want_len == 0) {
        assert_int_equal(out.len, 0);
    } else {
        assert_non_null(out.data);
        if (out.len != want_len || memcmp(out.data, want, want_len) != 0)
            fail_msg("repair gave %zu bytes, wanted %zu", out.len, want_len);
        /* The repaired text is always valid, as a whole. */
        assert_int_equal(utf8_valid_prefix(out.data, out.len), out.len);
    }
    buf_free(&out);
}

static void check_repair(const char *in, int cut, const char *want)
{
    check_repair_n(in, strlen(in), cut, want, strlen(want));
}

/* Repair s under both values of cut: both must give want. */
static void check_both(const char *in, const char *want)
{
    check_repair(in, 0, want);
    check_repair(in, 1, want);
}

/* ------------------------------------------------------------- valid */

static void test_ascii_passthrough(void **state)
{
    (void)state;
    check_both("hello, world\n\t!", "hello, world\n\t!");
    /* A NUL byte is valid UTF-8 and stays. */
    check_repair_n("a\0b", 3, 0, "a\0b", 3);
    check_repair_n("", 0, 0, "", 0);
    check_repair_n("", 0, 1, "", 0);
}

static void test_multibyte_passthrough(void **state)
{
    (void)state;
    /* 2, 3 and 4 bytes, and the edges of each range. */
    const char *valid = "\xC2\x80"          /* U+0080 */
                        "\xC3\xA9"          /* é */
                        "\xDF\xBF"          /* U+07FF */
                        "\xE0\xA0\x80"      /* U+0800 */
                        "\xE2\x82\xAC"      /* € */
                        "\xED\x9F\xBF"      /* U+D7FF, just below the surrogates */
                        "\xEE\x80\x80"      /* U+E000, just above them */
                        "\xEF\xBF\xBF"      /* U+FFFF */
                        "\xF0\x90\x80\x80"  /* U+10000 */
                        "\xF0\x9F\x98\x80"  /* 😀 */
                        "\xF4\x8F\xBF\xBF"; /* U+10FFFF */
    check_both(valid, valid);
    assert_int_equal(utf8_valid_prefix(valid, strlen(valid)), strlen(valid));
}

/* ----------------------------------------------------------- invalid */

static void test_invalid_bytes(void **state)
{
    (void)state;
    /* Lone continuation bytes, bytes that never appear, C0/C1 leads. */
    check_both("a\x80z", "a" FFFD "z");
    check_both("\xBF", FFFD);
    check_both("\xFF\xFE", FFFD FFFD);
    check_both("\xF5\x80", FFFD FFFD);
    check_both("x\xC1", "x" FFFD);
}

static void test_overlongs(void **state)
{
    (void)state;
    /* '/' as 2, 3 and 4 bytes; U+07FF as 3 bytes; U+FFFF as 4 bytes. */
    check_both("\xC0\xAF", FFFD FFFD);
    check_both("\xE0\x80\xAF", FFFD FFFD FFFD);
    check_both("\xF0\x80\x80\xAF", FFFD FFFD FFFD FFFD);
    check_both("\xE0\x9F\xBF", FFFD FFFD FFFD);
    check_both("\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD);
}

static void test_surrogates(void **state)
{
    (void)state;
    check_both("\xED\xA0\x80", FFFD FFFD FFFD);     /* U+D800 */
    check_both("\xED\xBF\xBF", FFFD FFFD FFFD);     /* U+DFFF */
    check_both("a\xED\xA0\x80z", "a" FFFD FFFD FFFD "z");
}

static void test_above_max(void **state)
{
    (void)state;
    check_both("\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* U+110000 */
    check_both("\xF7\xBF\xBF\xBF", FFFD FFFD FFFD FFFD);
}

static void test_maximal_subpart(void **state)
{
    (void)state;
    /* E2 82 starts a valid 3-byte sequence; 'A' ends it: one U+FFFD. */
    check_both("\xE2\x82" "A", FFFD "A");
    check_both("\xF0\x9F\x98" "A", FFFD "A");
    check_both("\xF0\x9F" "AB", FFFD "AB");
    /* A new lead byte ends the subpart too and starts its own character. */
    check_both("\xE2\x82\xC3\xA9", FFFD "\xC3\xA9");
    check_both("\xE2\x82\xE2\x82\xAC", FFFD "\xE2\x82\xAC");
}

/* ----------------------------------------------------- cut at the end */

static void test_truncated_end_dropped_when_cut(void **state)
{
    (void)state;
    check_repair("ok\xC3", 1, "ok");
    check_repair("ok\xE2\x82", 1, "ok");
    check_repair("ok\xE2", 1, "ok");
    check_repair("ok\xF0\x9F\x98", 1, "ok");
    check_repair("ok\xF0", 1, "ok");
    /* Only the text itself is dropped, nothing before it. */
    check_repair("\xC3\xA9\xE2\x82", 1, "\xC3\xA9");
    check_repair("\xE2\x82", 1, "");
}

static void test_truncated_end_replaced_when_not_cut(void **state)
{
    (void)state;
    check_repair("ok\xC3", 0, "ok" FFFD);
    check_repair("ok\xE2\x82", 0, "ok" FFFD);
    check_repair("ok\xF0\x9F\x98", 0, "ok" FFFD);
    check_repair("ok\xF0", 0, "ok" FFFD);
}

static void test_invalid_end_is_not_a_cut(void **state)
{
    (void)state;
    /* These could never become valid: replaced even with cut=1. */
    check_repair("ok\xF4\x90", 1, "ok" FFFD FFFD);
    check_repair("ok\xED\xA0", 1, "ok" FFFD FFFD);
    check_repair("ok\xE0\x80", 1, "ok" FFFD FFFD);
    check_repair("ok\x80", 1, "ok" FFFD);
    check_repair("ok\xC0", 1, "ok" FFFD);
}

/* ---------------------------------------------------- valid_prefix */

static void test_valid_prefix(void **state)
{
    (void)state;
    assert_int_equal(utf8_valid_prefix("abc", 3), 3);
    assert_int_equal(utf8_valid_prefix("ab\x80" "c", 4), 2);
    assert_int_equal(utf8_valid_prefix("a\xE2\x82\xAC", 4), 4);
    assert_int_equal(utf8_valid_prefix("a\xE2\x82\xAC", 3), 1); /* cut inside € */
    assert_int_equal(utf8_valid_prefix("\xED\xA0\x80", 3), 0);
    assert_int_equal(utf8_valid_prefix("", 0), 0);
}

/* Every 1- and 2-byte input, and 3-byte ones around the tricky leads:
 * the output is always valid and ASCII is never lost. */
static void test_output_always_valid(void **state)
{
    (void)state;
    unsigned char in[3];
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++)
            for (int cut = 0; cut < 2; cut++) {
                in[0] = (unsigned char)a;
                in[1] = (unsigned char)b;
                in[2] = 'A';
                struct buf out = BUF_INIT;
                assert_int_equal(utf8_repair((char *)in, 3, cut, &out), 0);
                assert_int_equal(utf8_valid_prefix(out.data, out.len), out.len);
                assert_true(out.len > 0 && out.data[out.len - 1] == 'A');
                buf_reset(&out);
                assert_int_equal(utf8_repair((char *)in, 2, cut, &out), 0);
                assert_int_equal(utf8_valid_prefix(out.data ? out.data : "", out.len), out.len);
                buf_free(&out);
            }
    static const unsigned char leads[] = {0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5};
    for (size_t l = 0; l < sizeof leads; l++)
        for (int b = 0x70; b < 0xD0; b++)
            for (int c = 0x70; c < 0xD0; c++) {
                unsigned char s[4] = {leads[l], (unsigned char)b, (unsigned char)c, 0x80};
                for (size_t len = 1; len <= 4; len++) {
                    struct buf out = BUF_INIT;
                    assert_int_equal(utf8_repair((char *)s, len, 1, &out), 0);
                    assert_int_equal(utf8_valid_prefix(out.data ? out.data : "", out.len),
                                     out.len);
                    buf_free(&out);
                }
            }
}

static void test_appends_to_existing(void **state)
{
    (void)state;
    struct buf out = BUF_INIT;
    assert_int_equal(buf_append(&out, "pre:", 4), 0);
    assert_int_equal(utf8_repair("\x80x", 2, 0, &out), 0);
    assert_int_equal(out.len, 4 + 3 + 1);
    assert_memory_equal(out.data, "pre:" FFFD "x", out.len);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii_passthrough),
        cmocka_unit_test(test_multibyte_passthrough),
        cmocka_unit_test(test_invalid_bytes),
        cmocka_unit_test(test_overlongs),
        cmocka_unit_test(test_surrogates),
        cmocka_unit_test(test_above_max),
        cmocka_unit_test(test_maximal_subpart),
        cmocka_unit_test(test_truncated_end_dropped_when_cut),
        cmocka_unit_test(test_truncated_end_replaced_when_not_cut),
        cmocka_unit_test(test_invalid_end_is_not_a_cut),
        cmocka_unit_test(test_valid_prefix),
        cmocka_unit_test(test_output_always_valid),
        cmocka_unit_test(test_appends_to_existing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
