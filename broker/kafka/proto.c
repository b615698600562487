#include "proto.h"

#include <string.h>

const char *kp_err2str(kp_err_t e)
{
    switch (e) {
    case KP_ERR_UNKNOWN_SERVER_ERROR: return "UNKNOWN_SERVER_ERROR";
    case KP_ERR_NONE: return "NONE";
    case KP_ERR_OFFSET_OUT_OF_RANGE: return "OFFSET_OUT_OF_RANGE";
    case KP_ERR_CORRUPT_MESSAGE: return "CORRUPT_MESSAGE";
    case KP_ERR_UNKNOWN_TOPIC_OR_PARTITION: return "UNKNOWN_TOPIC_OR_PARTITION";
    case KP_ERR_LEADER_NOT_AVAILABLE: return "LEADER_NOT_AVAILABLE";
    case KP_ERR_NOT_LEADER_OR_FOLLOWER: return "NOT_LEADER_OR_FOLLOWER";
    case KP_ERR_REQUEST_TIMED_OUT: return "REQUEST_TIMED_OUT";
    case KP_ERR_MESSAGE_TOO_LARGE: return "MESSAGE_TOO_LARGE";
    case KP_ERR_OFFSET_METADATA_TOO_LARGE: return "OFFSET_METADATA_TOO_LARGE";
    case KP_ERR_COORDINATOR_LOAD_IN_PROGRESS: return "COORDINATOR_LOAD_IN_PROGRESS";
    case KP_ERR_COORDINATOR_NOT_AVAILABLE: return "COORDINATOR_NOT_AVAILABLE";
    case KP_ERR_NOT_COORDINATOR: return "NOT_COORDINATOR";
    case KP_ERR_INVALID_TOPIC_EXCEPTION: return "INVALID_TOPIC_EXCEPTION";
    case KP_ERR_INVALID_REQUIRED_ACKS: return "INVALID_REQUIRED_ACKS";
    case KP_ERR_ILLEGAL_GENERATION: return "ILLEGAL_GENERATION";
    case KP_ERR_INCONSISTENT_GROUP_PROTOCOL: return "INCONSISTENT_GROUP_PROTOCOL";
    case KP_ERR_INVALID_GROUP_ID: return "INVALID_GROUP_ID";
    case KP_ERR_UNKNOWN_MEMBER_ID: return "UNKNOWN_MEMBER_ID";
    case KP_ERR_INVALID_SESSION_TIMEOUT: return "INVALID_SESSION_TIMEOUT";
    case KP_ERR_REBALANCE_IN_PROGRESS: return "REBALANCE_IN_PROGRESS";
    case KP_ERR_UNSUPPORTED_VERSION: return "UNSUPPORTED_VERSION";
    case KP_ERR_TOPIC_ALREADY_EXISTS: return "TOPIC_ALREADY_EXISTS";
    case KP_ERR_INVALID_PARTITIONS: return "INVALID_PARTITIONS";
    case KP_ERR_INVALID_REPLICATION_FACTOR: return "INVALID_REPLICATION_FACTOR";
    case KP_ERR_INVALID_REQUEST: return "INVALID_REQUEST";
    case KP_ERR_KAFKA_STORAGE_ERROR: return "KAFKA_STORAGE_ERROR";
    case KP_ERR_UNSUPPORTED_COMPRESSION_TYPE: return "UNSUPPORTED_COMPRESSION_TYPE";
    case KP_ERR_MEMBER_ID_REQUIRED: return "MEMBER_ID_REQUIRED";
    case KP_ERR_INVALID_RECORD: return "INVALID_RECORD";
    }
    return "UNKNOWN";
}

kp_frame_result_t kp_frame_try_extract(const uint8_t *p, size_t avail, size_t max_size, size_t *frame_len)
{
    if (avail < 4) return KP_FRAME_AGAIN;
    int32_t size = sk_load_i32(p);
    *frame_len = size < 0 ? 0 : (size_t)size + 4;
    /* api_key + api_version + correlation_id + client_id length */
    if (size < 10 || (size_t)size > max_size) return KP_FRAME_ERROR;
    return avail >= (size_t)size + 4 ? KP_FRAME_OK : KP_FRAME_AGAIN;
}

int kp_hdr_parse(sk_cur_t *c, kp_hdr_t *h, int flex_from)
{
    h->api_key = sk_cur_i16(c);
    h->api_version = sk_cur_i16(c);
    h->correlation_id = sk_cur_i32(c);
    /* client_id stays a classic INT16 string even in header v2. */
    h->client_id = kp_read_str(c);
    if (flex_from >= 0 && h->api_version >= flex_from) kp_skip_tags(c);
    return c->err ? -1 : 0;
}

kp_str_t kp_read_str(sk_cur_t *c)
{
    kp_str_t s = {NULL, -1};
    int16_t n = sk_cur_i16(c);
    if (n < -1) c->err = 1;
    if (c->err || n < 0) return s;
    s.p = (const char *)sk_cur_bytes(c, (size_t)n);
    s.len = s.p ? n : -1;
    return s;
}

kp_str_t kp_read_compact_str(sk_cur_t *c)
{
    kp_str_t s = {NULL, -1};
    uint64_t n = sk_cur_uvarint(c);
    if (c->err || n == 0) return s;
    if (n - 1 > INT16_MAX) {
        c->err = 1;
        return s;
    }
    s.p = (const char *)sk_cur_bytes(c, (size_t)(n - 1));
    s.len = s.p ? (int32_t)(n - 1) : -1;
    return s;
}

kp_str_t kp_read_bytes(sk_cur_t *c)
{
    kp_str_t s = {NULL, -1};
    int32_t n = sk_cur_i32(c);
    if (n < -1) c->err = 1;
    if (c->err || n < 0) return s;
    s.p = (const char *)sk_cur_bytes(c, (size_t)n);
    s.len = s.p ? n : -1;
    return s;
}

int32_t kp_read_arraylen(sk_cur_t *c, size_t min_elem)
{
    int32_t n = sk_cur_i32(c);
    if (c->err) return 0;
    if (n == -1) return -1;
    if (n < 0 || (min_elem && (size_t)n > sk_cur_left(c) / min_elem) || (!min_elem && n > 1000000)) {
        c->err = 1;
        return 0;
    }
    return n;
}

int32_t kp_read_compact_arraylen(sk_cur_t *c, size_t min_elem)
{
    uint64_t n = sk_cur_uvarint(c);
    if (c->err) return 0;
    if (n == 0) return -1;
    n--;
    if (n > INT32_MAX || (min_elem && n > sk_cur_left(c) / min_elem) || (!min_elem && n > 1000000)) {
        c->err = 1;
        return 0;
    }
    return (int32_t)n;
}

void kp_skip_tags(sk_cur_t *c)
{
    uint64_t n = sk_cur_uvarint(c);
    if (n > sk_cur_left(c)) { /* each tag needs at least two bytes */
        c->err = 1;
        return;
    }
    for (uint64_t i = 0; i < n && !c->err; i++) {
        (void)sk_cur_uvarint(c); /* tag */
        uint64_t size = sk_cur_uvarint(c);
        if (size > sk_cur_left(c)) c->err = 1;
        else sk_cur_skip(c, (size_t)size);
    }
}

int kp_read_bool(sk_cur_t *c)
{
    return sk_cur_i8(c) != 0;
}

void kp_write_str(sk_buf_t *b, const char *s, size_t n)
{
    if (n > INT16_MAX) n = INT16_MAX;
    sk_buf_add_i16(b, (int16_t)n);
    sk_buf_add(b, s, n);
}

void kp_write_cstr(sk_buf_t *b, const char *s)
{
    if (!s) sk_buf_add_i16(b, -1);
    else kp_write_str(b, s, strlen(s));
}

void kp_write_kstr(sk_buf_t *b, kp_str_t s)
{
    if (s.len < 0) sk_buf_add_i16(b, -1);
    else kp_write_str(b, s.p, (size_t)s.len);
}

void kp_write_compact_str(sk_buf_t *b, const char *s, size_t n)
{
    if (!s) {
        sk_buf_add_uvarint(b, 0);
        return;
    }
    sk_buf_add_uvarint(b, (uint64_t)n + 1);
    sk_buf_add(b, s, n);
}

void kp_write_bytes(sk_buf_t *b, const void *p, int32_t n)
{
    sk_buf_add_i32(b, n);
    if (n > 0) sk_buf_add(b, p, (size_t)n);
}

void kp_write_bool(sk_buf_t *b, int v)
{
    sk_buf_add_i8(b, v ? 1 : 0);
}

int kp_str_eq(kp_str_t s, const char *c)
{
    return s.len >= 0 && strlen(c) == (size_t)s.len && memcmp(s.p, c, (size_t)s.len) == 0;
}
