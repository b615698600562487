/*
 * booking_rules.c - see booking_rules.h.
 */
#include "booking_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

const char *const bk_state_names[] = {
    "PENDING", "AWAITING_PAYMENT", "CONFIRMED", "FAILED", "EXPIRED", "CANCELLED", NULL,
};

const char *bk_state_name(bk_state_t s)
{
    return (unsigned)s < BK_NSTATES ? bk_state_names[s] : "?";
}

int bk_state_parse(const char *s)
{
    if (!s) return -1;
    for (int i = 0; i < BK_NSTATES; i++)
        if (strcmp(bk_state_names[i], s) == 0) return i;
    return -1;
}

int bk_state_final(bk_state_t s)
{
    return s == BK_CONFIRMED || s == BK_FAILED || s == BK_EXPIRED || s == BK_CANCELLED;
}

int bk_state_open(bk_state_t s)
{
    return s == BK_PENDING || s == BK_AWAITING_PAYMENT;
}

/* -1: no transition.  Rows: from; columns: to. */
/* clang-format off */
#define NO (-1)
#define END_HELD (BK_FX_DEL_HOLD | BK_FX_ANNOUNCE)
#define END_RESERVED (BK_FX_RELEASE | BK_FX_DEL_HOLD | BK_FX_ANNOUNCE)
static const int transitions[BK_NSTATES][BK_NSTATES] = {
    /*                    PENDING AWAITING_PAYMENT        CONFIRMED                               FAILED        EXPIRED       CANCELLED */
    [BK_PENDING] =          {NO,  BK_FX_REQUEST_PAYMENT,  NO,                                     END_HELD,     END_HELD,     END_HELD},
    [BK_AWAITING_PAYMENT] = {NO,  NO,                     BK_FX_SELL | BK_FX_DEL_HOLD | BK_FX_ANNOUNCE,
                                                                                                  END_RESERVED, END_RESERVED, END_RESERVED},
    [BK_CONFIRMED] =        {NO,  NO,                     NO,                                     NO,           NO,           END_RESERVED | BK_FX_REFUND},
    [BK_FAILED] =           {NO,  NO,                     NO,                                     NO,           NO,           NO},
    [BK_EXPIRED] =          {NO,  NO,                     NO,                                     NO,           NO,           NO},
    [BK_CANCELLED] =        {NO,  NO,                     NO,                                     NO,           NO,           NO},
};
#undef NO
#undef END_HELD
#undef END_RESERVED
/* clang-format on */

int bk_transition(bk_state_t from, bk_state_t to)
{
    if ((unsigned)from >= BK_NSTATES || (unsigned)to >= BK_NSTATES) return -1;
    return transitions[from][to];
}

int bk_idem_key_valid(const char *key)
{
    if (!key || !*key) return 0;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++, n++)
        if (*p < 0x21 || *p > 0x7e || n >= BK_IDEM_KEY_MAX) return 0;
    return 1;
}

/* "<name>=<len>:<value>\n", or "<name>=-\n" when absent. */
static void hash_field(EVP_MD_CTX *md, const char *name, const char *value)
{
    char head[64];
    int n = value ? snprintf(head, sizeof head, "%s=%zu:", name, strlen(value))
                  : snprintf(head, sizeof head, "%s=-", name);
    EVP_DigestUpdate(md, head, (size_t)n);
    if (value) EVP_DigestUpdate(md, value, strlen(value));
    EVP_DigestUpdate(md, "\n", 1);
}

void bk_request_hash(const char *ticket_id, const char *catalog_id, char out[BK_HASH_HEX_LEN])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        /* Only out of memory gets here; sk_alloc's rule is to abort. */
        fprintf(stderr, "bk_request_hash: OpenSSL SHA-256 unavailable\n");
        abort();
    }
    EVP_DigestUpdate(md, "POST /bookings v1\n", 18);
    hash_field(md, "ticketId", ticket_id);
    hash_field(md, "catalogId", catalog_id);
    EVP_DigestFinal_ex(md, digest, &len);
    EVP_MD_CTX_free(md);
    for (unsigned int i = 0; i < len && 2 * i + 2 < BK_HASH_HEX_LEN; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[BK_HASH_HEX_LEN - 1] = '\0';
}

const char *bk_hold_key_id(const char *key)
{
    size_t n = sizeof BK_HOLD_PREFIX - 1;
    if (!key || strncmp(key, BK_HOLD_PREFIX, n) != 0 || !key[n]) return NULL;
    return key + n;
}
