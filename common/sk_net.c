#include "sk_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sk_net_split_hostport(const char *s, char *host, size_t hostsz, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1]) return -1;
    const char *h = s, *he = colon;
    if (*h == '[') {
        h++;
        if (he[-1] != ']') return -1;
        he--;
    } else if (memchr(s, ':', (size_t)(colon - s))) {
        return -1; /* a bare IPv6 address needs brackets */
    }
    if (he <= h || (size_t)(he - h) >= hostsz) return -1;
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}

int sk_net_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    int port;
    memset(ss, 0, sizeof *ss);
    if (sk_net_split_hostport(s, host, sizeof host, &port) < 0) return -1;
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof *in;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
        return 0;
    }
    return -1;
}

void sk_net_format(const struct sockaddr *sa, char *out, size_t outsz)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(out, outsz, "%s:%d", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(out, outsz, "[%s]:%d", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, outsz, "?");
    }
}
