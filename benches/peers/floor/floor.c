/*
 * The fan-out floor: the least a server can do to deliver one chat message to N WebSocket
 * connections on this machine. No framework, no allocation per delivery, one thread, epoll:
 * a message from any client is framed once and written to every connection with one write()
 * each. Whatever Showfloor spends above this is its own cost; this is what the kernel's
 * loopback send costs (issue 16, BENCHMARKS.md "Fan-out floor").
 *
 * It speaks just enough of Socket.IO v4 over WebSocket (Engine.IO 4, websocket transport only,
 * the default namespace) for `showfloor-loadtest chat-storm|audience --socketio ADDR` to drive
 * it exactly as it drives the Socket.IO peer: the open packet, the namespace connect, and the
 * "chat" event, rebroadcast as received. It never pings (a ping interval of an hour).
 *
 *   floor [port]     (default 7891, 0 for any; prints "listening <port>" when ready)
 *
 * Built by setup.sh with the system's C compiler (gcc -O2).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- SHA-1 (FIPS 180-4), for Sec-WebSocket-Accept only ---------------------------------- */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const uint8_t *msg, size_t len, uint8_t out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    uint8_t *m = calloc(total, 1);
    memcpy(m, msg, len);
    m[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) m[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
                   (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rol(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    free(m);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

static void base64(const uint8_t *in, size_t n, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = 0;
}

/* ---- connections -------------------------------------------------------------------------- */

typedef struct {
    int fd;
    int open;        /* WebSocket handshake done */
    char in[65536];  /* bytes read, not yet consumed */
    size_t in_len;
    char *out;       /* bytes a write() could not take, sent on EPOLLOUT */
    size_t out_len, out_cap;
} Conn;

static Conn **conns;   /* by fd */
static int *open_fds;  /* fds of open connections, for the broadcast loop */
static int n_open;
static int ep;
static long long deliveries, short_writes;

static void close_conn(Conn *c) {
    if (c->open) {
        for (int i = 0; i < n_open; i++)
            if (open_fds[i] == c->fd) { open_fds[i] = open_fds[--n_open]; break; }
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->out);
    free(c);
}

/* Sends `len` bytes, keeping what the socket does not take; 0 when the connection failed. */
static int send_bytes(Conn *c, const char *buf, size_t len) {
    if (c->out_len == 0) {
        ssize_t n = write(c->fd, buf, len);
        if (n == (ssize_t)len) return 1;
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) return 0;
            n = 0;
        }
        short_writes++;
        buf += n;
        len -= (size_t)n;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = c->fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    if (c->out_len + len > c->out_cap) {
        c->out_cap = (c->out_len + len) * 2;
        c->out = realloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, buf, len);
    c->out_len += len;
    return c->out_len < (64u << 20); /* a client 64 MiB behind is dropped */
}

static int flush_out(Conn *c) {
    while (c->out_len > 0) {
        ssize_t n = write(c->fd, c->out, c->out_len);
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return 1;
}

/* A server frame (unmasked, FIN) of `op` around `payload`, into `frame`; its length. */
static size_t frame_of(int op, const char *payload, size_t len, char *frame) {
    size_t h = 0;
    frame[h++] = (char)(0x80 | op);
    if (len < 126) {
        frame[h++] = (char)len;
    } else if (len < 65536) {
        frame[h++] = 126;
        frame[h++] = (char)(len >> 8);
        frame[h++] = (char)len;
    } else {
        frame[h++] = 127;
        for (int i = 7; i >= 0; i--) frame[h++] = (char)((uint64_t)len >> (8 * i));
    }
    memcpy(frame + h, payload, len);
    return h + len;
}

static int send_text(Conn *c, const char *text) {
    char frame[512];
    size_t n = frame_of(1, text, strlen(text), frame);
    return send_bytes(c, frame, n);
}

/* The whole point: one frame built once, one write() per connection. */
static char *bcast;
static size_t bcast_cap;

static void broadcast(const char *payload, size_t len) {
    if (len + 14 > bcast_cap) {
        bcast_cap = (len + 14) * 2;
        bcast = realloc(bcast, bcast_cap);
    }
    size_t n = frame_of(1, payload, len, bcast);
    for (int i = 0; i < n_open; i++) {
        Conn *c = conns[open_fds[i]];
        if (!send_bytes(c, bcast, n)) {
            close_conn(c);
            i--; /* the last fd moved into slot i */
            continue;
        }
        deliveries++;
    }
}

/* The HTTP upgrade, once the request's head is in. 1: done, 0: wait, -1: refuse. */
static int upgrade(Conn *c) {
    c->in[c->in_len] = 0;
    char *end = strstr(c->in, "\r\n\r\n");
    if (!end) return c->in_len < sizeof c->in - 1 ? 0 : -1;
    char *key = strcasestr(c->in, "\r\nSec-WebSocket-Key:");
    if (!key) return -1;
    key += strlen("\r\nSec-WebSocket-Key:");
    while (*key == ' ') key++;
    char *eol = strstr(key, "\r\n");
    char concat[128];
    int klen = (int)(eol - key);
    if (klen <= 0 || klen > 64) return -1;
    snprintf(concat, sizeof concat, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", klen, key);
    uint8_t digest[20];
    char accept[32];
    sha1((const uint8_t *)concat, strlen(concat), digest);
    base64(digest, 20, accept);
    char resp[256];
    int rn = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
    size_t used = (size_t)(end + 4 - c->in);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->open = 1;
    open_fds[n_open++] = c->fd;
    if (!send_bytes(c, resp, (size_t)rn)) return -1;
    return send_text(c, "0{\"sid\":\"floor\",\"upgrades\":[],\"pingInterval\":3600000,"
                        "\"pingTimeout\":3600000,\"maxPayload\":1000000}")
               ? 1
               : -1;
}

/* Client frames (masked). 0 when the connection is to be closed. */
static int frames(Conn *c) {
    for (;;) {
        uint8_t *p = (uint8_t *)c->in;
        if (c->in_len < 2) return 1;
        int op = p[0] & 0x0f;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (c->in_len < 4) return 1;
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            if (c->in_len < 10) return 1;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
            h = 10;
        }
        if (!(p[1] & 0x80) || !(p[0] & 0x80)) return 0; /* unmasked or fragmented: refuse */
        if (len > sizeof c->in - 14) return 0;
        if (c->in_len < h + 4 + len) return 1;
        uint8_t *mask = p + h;
        char *data = (char *)p + h + 4;
        for (uint64_t i = 0; i < len; i++) data[i] ^= (char)mask[i & 3];
        if (op == 8) return 0;
        if (op == 9) { /* ping: pong */
            char f[140];
            size_t n = frame_of(10, data, len < 125 ? len : 125, f);
            if (!send_bytes(c, f, n)) return 0;
        } else if (op == 1) {
            if (len == 2 && memcmp(data, "40", 2) == 0) {
                if (!send_text(c, "40{\"sid\":\"floor\"}")) return 0;
            } else if (len > 10 && memcmp(data, "42[\"chat\"", 9) == 0) {
                int fd = c->fd;
                broadcast(data, len);
                if (!conns[fd]) return -1; /* the sender itself was dropped (freed) */
            } /* "3" (pong) and anything else: ignored */
        }
        size_t used = h + 4 + (size_t)len;
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
}

static void on_sigterm(int s) {
    (void)s;
    fprintf(stderr, "floor: %lld deliveries, %lld short writes\n", deliveries, short_writes);
    _exit(0);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7891;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_sigterm);
    signal(SIGINT, on_sigterm);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    size_t max_fd = rl.rlim_cur > 1048576 ? 1048576 : rl.rlim_cur;
    conns = calloc(max_fd, sizeof *conns);
    open_fds = calloc(max_fd, sizeof *open_fds);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 4096)) {
        perror("floor: bind/listen");
        return 2;
    }
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("listening %d\n", ntohs(a.sin_port));
    fflush(stdout);

    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int cfd;
                while ((cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if ((size_t)cfd >= max_fd) { close(cfd); continue; }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    Conn *c = calloc(1, sizeof *c);
                    c->fd = cfd;
                    conns[cfd] = c;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                }
                continue;
            }
            Conn *c = conns[fd];
            if (!c) continue;
            if (evs[i].events & EPOLLOUT) {
                if (!flush_out(c)) { close_conn(c); continue; }
            }
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t r = read(fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                close_conn(c);
                continue;
            }
            if (r < 0) continue;
            c->in_len += (size_t)r;
            if (!c->open) {
                int u = upgrade(c);
                if (u < 0) { close_conn(c); continue; }
                if (u == 0) continue;
            }
            int f = frames(c);
            if (f == 0) close_conn(c);
        }
    }
}
