/*
 * sk_crc32c.h - CRC-32C (Castagnoli), as Kafka's record batch v2 uses.
 *
 * sk_crc32c(0, p, n) gives the checksum of p[0..n); pass a previous result
 * as crc to continue over more bytes.  Uses the SSE4.2 crc32 instruction when
 * the CPU has it, a slicing-by-8 table otherwise; both give the same value.
 */
#ifndef SK_CRC32C_H
#define SK_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t sk_crc32c(uint32_t crc, const void *p, size_t n);
/* The portable implementation, exposed so that tests can compare the two. */
uint32_t sk_crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
