#include "copenssl_support.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static void set_error(cd_tls_probe_result *result, int status, const char *what, const char *detail) {
    result->status = status;
    snprintf(result->error, sizeof(result->error), "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

static void set_openssl_error(cd_tls_probe_result *result, const char *what) {
    char buffer[256] = {0};
    unsigned long code = ERR_get_error();
    if (code != 0) {
        ERR_error_string_n(code, buffer, sizeof(buffer));
    } else if (errno != 0) {
        snprintf(buffer, sizeof(buffer), "%s", strerror(errno));
    } else {
        snprintf(buffer, sizeof(buffer), "connection closed by peer");
    }
    ERR_clear_error();
    set_error(result, -2, what, buffer);
}

/// Non-blocking connect bounded by timeout_ms, then back to blocking with socket timeouts.
static int connect_with_deadline(const char *host, int port, int timeout_ms, cd_tls_probe_result *result) {
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *addresses = NULL;
    int rc = getaddrinfo(host, port_text, &hints, &addresses);
    if (rc != 0) {
        set_error(result, -1, "cannot resolve host", gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    int last_errno = 0;
    for (struct addrinfo *address = addresses; address != NULL; address = address->ai_next) {
        fd = socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC, address->ai_protocol);
        if (fd < 0) { last_errno = errno; continue; }
        int flags = fcntl(fd, F_GETFL, 0);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        rc = connect(fd, address->ai_addr, address->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            rc = poll(&pfd, 1, timeout_ms);
            if (rc == 0) { last_errno = ETIMEDOUT; close(fd); fd = -1; continue; }
            int so_error = 0;
            socklen_t len = sizeof(so_error);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
            if (so_error != 0) { last_errno = so_error; close(fd); fd = -1; continue; }
        } else if (rc != 0) {
            last_errno = errno; close(fd); fd = -1; continue;
        }
        fcntl(fd, F_SETFL, flags);
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        break;
    }
    freeaddrinfo(addresses);
    if (fd < 0) {
        set_error(result, -1, "cannot connect", strerror(last_errno ? last_errno : ECONNREFUSED));
    }
    return fd;
}

/// Reads one SMTP reply (possibly multi-line: "250-…" until "250 …") and returns its code, or -1.
static int smtp_reply(int fd, char *buffer, size_t size) {
    size_t used = 0;
    for (;;) {
        ssize_t n = recv(fd, buffer + used, size - used - 1, 0);
        if (n <= 0) return -1;
        used += (size_t)n;
        buffer[used] = '\0';
        // The last line of a reply has a space after the code; find a complete one.
        char *line = buffer;
        for (;;) {
            char *end = strstr(line, "\r\n");
            if (end == NULL) break;
            if (end - line >= 4 && line[3] == ' ') return atoi(line);
            line = end + 2;
        }
        if (used >= size - 1) return -1;
    }
}

static int smtp_starttls(int fd, cd_tls_probe_result *result) {
    char buffer[8192];
    int code = smtp_reply(fd, buffer, sizeof(buffer));
    if (code != 220) { set_error(result, -4, "SMTP server did not greet with 220", NULL); return -1; }
    const char *ehlo = "EHLO certdeploy.invalid\r\n";
    if (send(fd, ehlo, strlen(ehlo), MSG_NOSIGNAL) < 0) { set_error(result, -4, "SMTP EHLO failed", strerror(errno)); return -1; }
    code = smtp_reply(fd, buffer, sizeof(buffer));
    if (code != 250) { set_error(result, -4, "SMTP EHLO was refused", NULL); return -1; }
    if (strstr(buffer, "STARTTLS") == NULL) { set_error(result, -4, "SMTP server does not offer STARTTLS", NULL); return -1; }
    const char *starttls = "STARTTLS\r\n";
    if (send(fd, starttls, strlen(starttls), MSG_NOSIGNAL) < 0) { set_error(result, -4, "SMTP STARTTLS failed", strerror(errno)); return -1; }
    code = smtp_reply(fd, buffer, sizeof(buffer));
    if (code != 220) { set_error(result, -4, "SMTP STARTTLS was refused", NULL); return -1; }
    return 0;
}

void cd_tls_probe(const char *host, int port, const char *server_name, int request_status, int timeout_ms,
                  cd_tls_probe_result *result) {
    cd_tls_probe_starttls(host, port, server_name, request_status, timeout_ms, CD_STARTTLS_NONE, result);
}

void cd_tls_probe_starttls(const char *host, int port, const char *server_name, int request_status, int timeout_ms,
                           cd_starttls starttls, cd_tls_probe_result *result) {
    memset(result, 0, sizeof(*result));
    int fd = connect_with_deadline(host, port, timeout_ms, result);
    if (fd < 0) return;
    if (starttls == CD_STARTTLS_SMTP && smtp_starttls(fd, result) != 0) {
        close(fd);
        return;
    }

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) { set_openssl_error(result, "cannot create TLS context"); close(fd); return; }
    // The probe identifies the served leaf by fingerprint; trust is not what it checks.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) { set_openssl_error(result, "cannot create TLS session"); SSL_CTX_free(ctx); close(fd); return; }
    SSL_set_fd(ssl, fd);
    if (server_name != NULL && server_name[0] != '\0') {
        SSL_set_tlsext_host_name(ssl, server_name);
    }
    if (request_status) {
        SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp);
    }
    errno = 0;
    if (SSL_connect(ssl) != 1) {
        set_openssl_error(result, "TLS handshake failed");
    } else {
        X509 *leaf = SSL_get1_peer_certificate(ssl);
        if (leaf == NULL) {
            set_error(result, -3, "server sent no certificate", NULL);
        } else {
            unsigned char *der = NULL;
            int len = i2d_X509(leaf, &der);
            if (len > 0) {
                result->leaf_der = malloc((size_t)len);
                memcpy(result->leaf_der, der, (size_t)len);
                result->leaf_der_len = (size_t)len;
            }
            OPENSSL_free(der);
            X509_free(leaf);
        }
        if (request_status) {
            const unsigned char *staple = NULL;
            long staple_len = SSL_get_tlsext_status_ocsp_resp(ssl, &staple);
            if (staple != NULL && staple_len > 0) {
                result->ocsp_der = malloc((size_t)staple_len);
                memcpy(result->ocsp_der, staple, (size_t)staple_len);
                result->ocsp_der_len = (size_t)staple_len;
            }
        }
        snprintf(result->protocol, sizeof(result->protocol), "%s", SSL_get_version(ssl));
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
}

void cd_tls_probe_result_free(cd_tls_probe_result *result) {
    free(result->leaf_der);
    free(result->ocsp_der);
    result->leaf_der = NULL;
    result->ocsp_der = NULL;
}
