/*
 * fuzz_resp.c - libFuzzer target over the RESP request parser (kv/resp.h).
 *
 * The input is fed the way a connection feeds it: in pieces whose sizes come
 * from the first bytes, into a buffer that is reallocated (so it moves) on
 * every piece, with complete requests dropped from its front.  Checked on
 * every request: arguments lie inside the buffer (multibulk) and within the
 * limits, consumed bytes are never more than the buffer holds, and parsing the
 * same bytes in one piece gives the same requests.  Small limits make the
 * limit paths reachable.
 *
 *   CC=clang meson setup /tmp/build-fuzz-kv -Dfuzz=true && ninja -C /tmp/build-fuzz-kv
 *   /tmp/build-fuzz-kv/tests/kv/fuzz_resp -runs=1000000 tests/kv/corpus
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "sk_alloc.h"

static const kv_resp_limits_t small = {.max_bulk = 4096, .max_multibulk = 64, .max_inline = 256};

/* Parses data in one go; returns a hash of the requests (for comparison). */
static uint64_t parse_all(const uint8_t *data, size_t len, size_t *nreq)
{
    kv_parser_t p;
    kv_parser_init(&p, &small);
    uint64_t h = 1469598103934665603ULL;
    size_t off = 0;
    *nreq = 0;
    for (;;) {
        kv_resp_result_t r = kv_resp_parse(&p, (const char *)data + off, len - off);
        if (r != KV_RESP_OK) {
            h ^= (uint64_t)(r + 2);
            break;
        }
        if (p.consumed == 0 || p.consumed > len - off) abort();
        for (size_t i = 0; i < p.argc; i++) {
            for (size_t k = 0; k < p.argv[i].len; k++) h = (h ^ (uint8_t)p.argv[i].p[k]) * 1099511628211ULL;
            h = (h ^ 0x100) * 1099511628211ULL;
        }
        h = (h ^ 0x200) * 1099511628211ULL;
        off += p.consumed;
        (*nreq)++;
    }
    kv_parser_release(&p);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned step_seed = data[0];
    data++;
    size--;

    size_t whole_n;
    uint64_t whole = parse_all(data, size, &whole_n);

    kv_parser_t p;
    kv_parser_init(&p, &small);
    char *buf = NULL;
    size_t have = 0, fed = 0, nreq = 0;
    uint64_t h = 1469598103934665603ULL;
    kv_resp_result_t r = KV_RESP_AGAIN;
    while (r != KV_RESP_ERROR) {
        if (r == KV_RESP_AGAIN) {
            if (fed == size) break;
            size_t piece = (step_seed % 7) + 1 + (fed % 3);
            step_seed = step_seed * 1103515245u + 12345u;
            if (piece > size - fed) piece = size - fed;
            char *nb = sk_malloc(have + piece + 1);
            if (have) memcpy(nb, buf, have);
            memcpy(nb + have, data + fed, piece);
            free(buf);
            buf = nb;
            have += piece;
            fed += piece;
        }
        r = kv_resp_parse(&p, buf, have);
        if (r == KV_RESP_OK) {
            if (p.consumed == 0 || p.consumed > have) abort();
            if (buf[0] == '*' && p.argc > (size_t)small.max_multibulk) abort();
            for (size_t i = 0; i < p.argc; i++) {
                if (p.argv[i].len > (size_t)small.max_bulk) abort();
                if (buf[0] == '*' && (p.argv[i].p < buf || p.argv[i].p + p.argv[i].len > buf + have)) abort();
                for (size_t k = 0; k < p.argv[i].len; k++) h = (h ^ (uint8_t)p.argv[i].p[k]) * 1099511628211ULL;
                h = (h ^ 0x100) * 1099511628211ULL;
            }
            h = (h ^ 0x200) * 1099511628211ULL;
            nreq++;
            memmove(buf, buf + p.consumed, have - p.consumed);
            have -= p.consumed;
        }
    }
    if (r == KV_RESP_ERROR) h ^= (uint64_t)(KV_RESP_ERROR + 2);
    else h ^= (uint64_t)(KV_RESP_AGAIN + 2);
    /* Piecewise and whole parsing must agree on every complete request and
     * on the final state (error or waiting). */
    if (nreq != whole_n || h != whole) abort();
    free(buf);
    kv_parser_release(&p);
    return 0;
}
