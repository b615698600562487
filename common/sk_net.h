/*
 * sk_net.h - addresses as souk's flags spell them.
 */
#ifndef SK_NET_H
#define SK_NET_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * Parses "IPv4:PORT" or "[IPv6]:PORT" (port 0..65535; 0 lets the kernel
 * pick) into ss.  Host names are not resolved: a listener binds an address.
 * Returns 0, or -1 if s is not of that form.
 */
int sk_net_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* Splits "host:port" or "[v6]:port" (any host text).  Returns 0 or -1. */
int sk_net_split_hostport(const char *s, char *host, size_t hostsz, int *port);

/* Formats an IPv4/IPv6 socket address as "1.2.3.4:5" or "[::1]:5". */
void sk_net_format(const struct sockaddr *sa, char *out, size_t outsz);

#endif
