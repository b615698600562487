/*
 * proto.h - the Kafka wire protocol: framing, request header, primitive
 * types and error codes.  Pure functions over bytes; no I/O.
 *
 * Reading goes through sk_cur_t, whose sticky error flag means a handler can
 * read a whole request and check cur->err once.  Array counts are checked
 * against the bytes left (each element needs at least min_elem bytes), so a
 * hostile count never drives a large allocation or a long loop.
 */
#ifndef SOUK_KAFKA_PROTO_H
#define SOUK_KAFKA_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "sk_buf.h"

/* Kafka ErrorCode values (the subset souk uses), in Kafka's own names. */
typedef enum {
    KP_ERR_UNKNOWN_SERVER_ERROR = -1,
    KP_ERR_NONE = 0,
    KP_ERR_OFFSET_OUT_OF_RANGE = 1,
    KP_ERR_CORRUPT_MESSAGE = 2,
    KP_ERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    KP_ERR_LEADER_NOT_AVAILABLE = 5,
    KP_ERR_NOT_LEADER_OR_FOLLOWER = 6,
    KP_ERR_REQUEST_TIMED_OUT = 7,
    KP_ERR_MESSAGE_TOO_LARGE = 10,
    KP_ERR_OFFSET_METADATA_TOO_LARGE = 12,
    KP_ERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
    KP_ERR_COORDINATOR_NOT_AVAILABLE = 15,
    KP_ERR_NOT_COORDINATOR = 16,
    KP_ERR_INVALID_TOPIC_EXCEPTION = 17,
    KP_ERR_INVALID_REQUIRED_ACKS = 21,
    KP_ERR_ILLEGAL_GENERATION = 22,
    KP_ERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    KP_ERR_INVALID_GROUP_ID = 24,
    KP_ERR_UNKNOWN_MEMBER_ID = 25,
    KP_ERR_INVALID_SESSION_TIMEOUT = 26,
    KP_ERR_REBALANCE_IN_PROGRESS = 27,
    KP_ERR_UNSUPPORTED_VERSION = 35,
    KP_ERR_TOPIC_ALREADY_EXISTS = 36,
    KP_ERR_INVALID_PARTITIONS = 37,
    KP_ERR_INVALID_REPLICATION_FACTOR = 38,
    KP_ERR_INVALID_REQUEST = 42,
    KP_ERR_KAFKA_STORAGE_ERROR = 56,
    KP_ERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
    KP_ERR_MEMBER_ID_REQUIRED = 79,
    KP_ERR_INVALID_RECORD = 87,
} kp_err_t;

const char *kp_err2str(kp_err_t e);

/* ApiKey values. */
enum {
    KP_API_Produce = 0,
    KP_API_Fetch = 1,
    KP_API_ListOffsets = 2,
    KP_API_Metadata = 3,
    KP_API_OffsetCommit = 8,
    KP_API_OffsetFetch = 9,
    KP_API_FindCoordinator = 10,
    KP_API_JoinGroup = 11,
    KP_API_Heartbeat = 12,
    KP_API_LeaveGroup = 13,
    KP_API_SyncGroup = 14,
    KP_API_DescribeGroups = 15,
    KP_API_ListGroups = 16,
    KP_API_ApiVersions = 18,
    KP_API_CreateTopics = 19,
    KP_API__MAX = 20,
};

/* Framing: a frame is an INT32 size followed by that many bytes. */
typedef enum { KP_FRAME_OK = 0, KP_FRAME_AGAIN = 1, KP_FRAME_ERROR = -1 } kp_frame_result_t;

/*
 * Looks at the first avail bytes of a connection's input.  KP_FRAME_OK: a
 * whole frame is present and *frame_len (size prefix included) says how long
 * it is.  KP_FRAME_AGAIN: wait for more bytes.  KP_FRAME_ERROR: the size is
 * below a request header's minimum or above max_size; close the connection.
 * *frame_len is set to the declared length even then (for logging).
 */
kp_frame_result_t kp_frame_try_extract(const uint8_t *p, size_t avail, size_t max_size, size_t *frame_len);

/* A string as read off the wire: len -1 means null.  Not NUL-terminated. */
typedef struct kp_str_s {
    const char *p;
    int32_t len;
} kp_str_t;

/* Request header v1 (and v2 when flexible: tagged fields after client_id). */
typedef struct kp_hdr_s {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    kp_str_t client_id;
} kp_hdr_t;

/* Parses the header of a frame body (size prefix removed).  flex_from is the
 * first flexible version of this API (or -1 for none); the header then has
 * tagged fields.  Returns 0, or -1 if the header is malformed (the
 * correlation id is still set when at least 8 bytes were there). */
int kp_hdr_parse(sk_cur_t *c, kp_hdr_t *h, int flex_from);

/* Primitive readers (all sticky on error). */
kp_str_t kp_read_str(sk_cur_t *c);         /* INT16 length, -1 = null */
kp_str_t kp_read_compact_str(sk_cur_t *c); /* UVARINT length + 1, 0 = null */
kp_str_t kp_read_bytes(sk_cur_t *c);       /* INT32 length, -1 = null */
/* INT32 count; -1 (null) is returned as -1; a count that cannot fit in the
 * bytes left sets err.  min_elem is the smallest encoded element size. */
int32_t kp_read_arraylen(sk_cur_t *c, size_t min_elem);
int32_t kp_read_compact_arraylen(sk_cur_t *c, size_t min_elem);
void kp_skip_tags(sk_cur_t *c);
int kp_read_bool(sk_cur_t *c);

/* Primitive writers. */
void kp_write_str(sk_buf_t *b, const char *s, size_t n);
void kp_write_cstr(sk_buf_t *b, const char *s); /* NULL writes a null string */
void kp_write_kstr(sk_buf_t *b, kp_str_t s);    /* as read: keeps null */
void kp_write_compact_str(sk_buf_t *b, const char *s, size_t n);
void kp_write_bytes(sk_buf_t *b, const void *p, int32_t n); /* -1 writes null */
void kp_write_bool(sk_buf_t *b, int v);

/* Compares a wire string with a C string. */
int kp_str_eq(kp_str_t s, const char *c);

#endif
