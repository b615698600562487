/*
 * server.h - the Kafka protocol listener of souk-broker.
 *
 * Accepts connections on the broker's event base and answers requests in
 * order per connection.  A Fetch that has to wait (long polling) holds only
 * its own connection: further requests on it wait, as Kafka does, while every
 * other connection goes on.  A connection whose client does not read its
 * responses stops being read once 16 MiB of output are queued.
 */
#ifndef SOUK_KAFKA_SERVER_H
#define SOUK_KAFKA_SERVER_H

#include "broker.h"

typedef struct kp_server_s kp_server_t;

/* Binds cfg.kafka_listen ("host:port", port 0 picks a free port) and fills
 * b->adv_host/adv_port from --advertised-listener or the bound address.
 * Returns NULL with errstr on failure. */
kp_server_t *kp_server_new(broker_t *b, char *errstr, size_t errsz);
/* The bound address, "127.0.0.1:9092". */
const char *kp_server_address(const kp_server_t *s);
/* Stops accepting and answers every waiting fetch now. */
void kp_server_stop_accepting(kp_server_t *s);
/* Bytes still queued to clients (for a clean shutdown). */
size_t kp_server_pending_output(const kp_server_t *s);
void kp_server_free(kp_server_t *s);

#endif
