#include "copenssl_support.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static void put_error(char *error, size_t error_len, const char *what) {
    char detail[256] = {0};
    unsigned long code = ERR_get_error();
    if (code != 0) {
        ERR_error_string_n(code, detail, sizeof(detail));
        snprintf(error, error_len, "%s (%s)", what, detail);
    } else {
        snprintf(error, error_len, "%s", what);
    }
    ERR_clear_error();
}

static X509 *parse_cert(const unsigned char *der, size_t len) {
    const unsigned char *cursor = der;
    return d2i_X509(NULL, &cursor, (long)len);
}

static long long to_epoch(const ASN1_GENERALIZEDTIME *time) {
    if (time == NULL) return 0;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (ASN1_TIME_to_tm(time, &tm) != 1) return 0;
    return (long long)timegm(&tm);
}

int cd_ocsp_request(const unsigned char *leaf_der, size_t leaf_len, const unsigned char *issuer_der, size_t issuer_len,
                    unsigned char **out, size_t *out_len, char *error, size_t error_len) {
    int result = -1;
    X509 *leaf = parse_cert(leaf_der, leaf_len);
    X509 *issuer = parse_cert(issuer_der, issuer_len);
    OCSP_REQUEST *request = NULL;
    if (leaf == NULL || issuer == NULL) { put_error(error, error_len, "cannot parse certificate"); goto done; }
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
    if (id == NULL) { put_error(error, error_len, "cannot build the OCSP CertID"); goto done; }
    request = OCSP_REQUEST_new();
    if (request == NULL || OCSP_request_add0_id(request, id) == NULL) {
        OCSP_CERTID_free(id);
        put_error(error, error_len, "cannot build the OCSP request");
        goto done;
    }
    unsigned char *der = NULL;
    int len = i2d_OCSP_REQUEST(request, &der);
    if (len <= 0) { put_error(error, error_len, "cannot encode the OCSP request"); goto done; }
    *out = malloc((size_t)len);
    memcpy(*out, der, (size_t)len);
    *out_len = (size_t)len;
    OPENSSL_free(der);
    result = 0;
done:
    OCSP_REQUEST_free(request);
    X509_free(leaf);
    X509_free(issuer);
    return result;
}

int cd_ocsp_check_response(const unsigned char *response_der, size_t response_len,
                           const unsigned char *leaf_der, size_t leaf_len,
                           const unsigned char *issuer_der, size_t issuer_len,
                           cd_ocsp_single_status *status, char *error, size_t error_len) {
    int result = -1;
    memset(status, 0, sizeof(*status));
    status->revocation_reason = -1;
    X509 *leaf = parse_cert(leaf_der, leaf_len);
    X509 *issuer = parse_cert(issuer_der, issuer_len);
    OCSP_RESPONSE *response = NULL;
    OCSP_BASICRESP *basic = NULL;
    OCSP_CERTID *id = NULL;
    X509_STORE *store = NULL;
    STACK_OF(X509) *untrusted = NULL;
    if (leaf == NULL || issuer == NULL) { put_error(error, error_len, "cannot parse certificate"); goto done; }

    const unsigned char *cursor = response_der;
    response = d2i_OCSP_RESPONSE(NULL, &cursor, (long)response_len);
    if (response == NULL) { put_error(error, error_len, "the OCSP response is not valid DER"); goto done; }
    int response_status = OCSP_response_status(response);
    if (response_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(error, error_len, "the responder answered %s (OCSP response status %d)", OCSP_response_status_str(response_status), response_status);
        goto done;
    }
    basic = OCSP_response_get1_basic(response);
    if (basic == NULL) { put_error(error, error_len, "the OCSP response has no basic response"); goto done; }

    // Trust exactly the issuer: the response must be signed by it, or by a responder certificate it issued
    // for OCSP signing (OpenSSL's OCSP_check_issuer enforces the id-kp-OCSPSigning EKU on delegates).
    store = X509_STORE_new();
    X509_STORE_add_cert(store, issuer);
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    untrusted = sk_X509_new_null();
    sk_X509_push(untrusted, issuer);
    if (OCSP_basic_verify(basic, untrusted, store, 0) <= 0) {
        put_error(error, error_len, "the OCSP response signature does not verify against the issuer or a delegated responder it issued");
        goto done;
    }

    id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
    int cert_status = 0, reason = -1;
    ASN1_GENERALIZEDTIME *revoked_at = NULL, *this_update = NULL, *next_update = NULL;
    if (id == NULL || OCSP_resp_find_status(basic, id, &cert_status, &reason, &revoked_at, &this_update, &next_update) != 1) {
        // Some responders hash the CertID with SHA-256; try that before giving up.
        OCSP_CERTID_free(id);
        id = OCSP_cert_to_id(EVP_sha256(), leaf, issuer);
        if (id == NULL || OCSP_resp_find_status(basic, id, &cert_status, &reason, &revoked_at, &this_update, &next_update) != 1) {
            snprintf(error, error_len, "the OCSP response does not cover this certificate (no matching CertID)");
            goto done;
        }
    }
    status->cert_status = cert_status;
    status->revocation_reason = reason;
    status->this_update = to_epoch(this_update);
    status->next_update = to_epoch(next_update);
    status->revocation_time = to_epoch(revoked_at);
    result = 0;
done:
    if (untrusted != NULL) sk_X509_free(untrusted);
    X509_STORE_free(store);
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(response);
    X509_free(leaf);
    X509_free(issuer);
    return result;
}

static int wait_fd(int fd, short events, int timeout_ms) {
    struct pollfd pfd = {.fd = fd, .events = events};
    return poll(&pfd, 1, timeout_ms);
}

int cd_http_post(const char *host, int port, const char *path, const unsigned char *body, size_t body_len,
                 int timeout_ms, size_t max_len, unsigned char **out, size_t *out_len, char *error, size_t error_len) {
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *addresses = NULL;
    int rc = getaddrinfo(host, port_text, &hints, &addresses);
    if (rc != 0) { snprintf(error, error_len, "cannot resolve %s: %s", host, gai_strerror(rc)); return -1; }
    int fd = -1;
    int last_errno = ECONNREFUSED;
    for (struct addrinfo *a = addresses; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) { last_errno = errno; continue; }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, timeout_ms) > 0) {
            int so_error = 0;
            socklen_t len = sizeof(so_error);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
            if (so_error == 0) break;
            last_errno = so_error;
        } else {
            last_errno = errno == EINPROGRESS ? ETIMEDOUT : errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(addresses);
    if (fd < 0) { snprintf(error, error_len, "cannot connect to %s:%d: %s", host, port, strerror(last_errno)); return -1; }

    char header[1024];
    int header_len = snprintf(header, sizeof(header),
        "POST %s HTTP/1.0\r\nHost: %s:%d\r\nUser-Agent: certdeploy\r\nContent-Type: application/ocsp-request\r\n"
        "Accept: application/ocsp-response\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
        path, host, port, body_len);
    size_t total = (size_t)header_len + body_len;
    unsigned char *request = malloc(total);
    memcpy(request, header, (size_t)header_len);
    memcpy(request + header_len, body, body_len);
    size_t sent = 0;
    while (sent < total) {
        ssize_t n = send(fd, request + sent, total - sent, MSG_NOSIGNAL);
        if (n > 0) { sent += (size_t)n; continue; }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLOUT, timeout_ms) > 0) continue;
        free(request);
        close(fd);
        snprintf(error, error_len, "sending the OCSP request failed: %s", n < 0 ? strerror(errno) : "timed out");
        return -1;
    }
    free(request);

    size_t capacity = 8192, used = 0, limit = max_len + 8192;
    unsigned char *buffer = malloc(capacity);
    for (;;) {
        if (used == capacity) {
            if (capacity >= limit) { free(buffer); close(fd); snprintf(error, error_len, "the OCSP response is larger than %zu bytes", max_len); return -1; }
            capacity *= 2;
            buffer = realloc(buffer, capacity);
        }
        ssize_t n = recv(fd, buffer + used, capacity - used, 0);
        if (n > 0) { used += (size_t)n; continue; }
        if (n == 0) break;
        if ((errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(fd, POLLIN, timeout_ms) > 0) continue;
            free(buffer); close(fd);
            snprintf(error, error_len, "the OCSP responder did not answer within %d ms", timeout_ms);
            return -1;
        }
        free(buffer); close(fd);
        snprintf(error, error_len, "reading the OCSP response failed: %s", strerror(errno));
        return -1;
    }
    close(fd);

    int http_status = 0;
    if (used < 12 || sscanf((const char *)buffer, "HTTP/%*d.%*d %d", &http_status) != 1) {
        free(buffer);
        snprintf(error, error_len, "the OCSP responder sent no HTTP status line");
        return -1;
    }
    unsigned char *body_start = NULL;
    for (size_t i = 0; i + 3 < used; i++) {
        if (buffer[i] == '\r' && buffer[i + 1] == '\n' && buffer[i + 2] == '\r' && buffer[i + 3] == '\n') { body_start = buffer + i + 4; break; }
    }
    if (body_start == NULL) { free(buffer); snprintf(error, error_len, "the OCSP responder sent an incomplete HTTP response"); return -1; }
    size_t body_size = used - (size_t)(body_start - buffer);
    if (body_size > max_len) { free(buffer); snprintf(error, error_len, "the OCSP response is larger than %zu bytes", max_len); return -1; }
    *out = malloc(body_size > 0 ? body_size : 1);
    memcpy(*out, body_start, body_size);
    *out_len = body_size;
    free(buffer);
    return http_status;
}
