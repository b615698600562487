/*
 * freeport [N] - prints N (default 1) TCP ports on 127.0.0.1 that are free
 * right now, one per line, for tests that start servers.  The ports are
 * held open together while they are picked, so the N are distinct.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    if (n < 1 || n > 64) {
        fprintf(stderr, "usage: freeport [1..64]\n");
        return 2;
    }
    int fds[64];
    for (int i = 0; i < n; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        socklen_t len = sizeof sa;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof sa) < 0 ||
            getsockname(fds[i], (struct sockaddr *)&sa, &len) < 0) {
            perror("freeport");
            return 1;
        }
        printf("%d\n", ntohs(sa.sin_port));
    }
    for (int i = 0; i < n; i++) close(fds[i]);
    return 0;
}
