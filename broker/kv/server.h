/*
 * server.h - the key store's RESP2 listener inside souk-broker.
 *
 * One kv_server_t per broker, on the broker's event loop.  It owns the store
 * (store.h), its append-only file (aof.h), the clients, Pub/Sub and keyspace
 * notifications, and announces every expired key on the topic "kv.expired"
 * of the broker's own log:
 *
 *   Kafka key = the key; value = {"key":..,"value":..,"expiredAt":RFC 3339 ms}
 *   partition = murmur2(key) mod partitions (Kafka's default partitioner, so a
 *   key always lands in the same partition); the topic is created on first use.
 *
 * Order of effects in one loop pass (the "before sleep" step, run once after
 * every read callback of the pass): expired-key records are appended to the
 * log, then the AOF records of the pass are written (and fsynced under
 * --kv-fsync always, after the log partitions they depend on), then replies
 * are written to the sockets.  So a client never sees a reply for a change
 * that is not in the AOF, and the AOF never says a key expired without its
 * record being in the log first.
 *
 * Commands are dispatched through a table {name, arity, flags, handler} with
 * Redis's arity convention (n: exactly n arguments including the name; -n:
 * at least n).  Replies and error texts are Redis 7.0's.
 */
#ifndef SOUK_KV_SERVER_H
#define SOUK_KV_SERVER_H

#include <stddef.h>

#include "broker.h"

typedef struct kv_server_s kv_server_t;

/*
 * Loads the AOF from cfg.data_dir, binds cfg.kv_listen ("IP:PORT", port 0
 * picks one) and starts serving on b->base.  Keys whose deadline passed while
 * the broker was down are expired (and announced) on the first loop pass.
 * Returns NULL with errstr on failure.
 */
kv_server_t *kv_server_new(broker_t *b, char *errstr, size_t errsz);
/* The bound address, "127.0.0.1:6379". */
const char *kv_server_address(const kv_server_t *s);
/* Stops accepting connections (shutdown begins); clients in flight go on. */
void kv_server_stop_accepting(kv_server_t *s);
/* Reply bytes still queued to clients (for a clean shutdown). */
size_t kv_server_pending_output(const kv_server_t *s);
/* Writes and fsyncs the AOF, closes every client and frees.  Call before
 * the log is closed.  s may be NULL. */
void kv_server_free(kv_server_t *s);

#endif
