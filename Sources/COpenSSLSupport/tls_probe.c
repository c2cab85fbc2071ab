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
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

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
        // The certificates after the leaf, as the server sent them: what a client has to build a path with.
        STACK_OF(X509) *sent = SSL_get_peer_cert_chain(ssl);
        if (sent != NULL && sk_X509_num(sent) > 1) {
            BIO *bio = BIO_new(BIO_s_mem());
            for (int i = 1; bio != NULL && i < sk_X509_num(sent); i++) {
                PEM_write_bio_X509(bio, sk_X509_value(sent, i));
            }
            if (bio != NULL) {
                char *data = NULL;
                long len = BIO_get_mem_data(bio, &data);
                if (len > 0) {
                    result->chain_pem = malloc((size_t)len + 1);
                    memcpy(result->chain_pem, data, (size_t)len);
                    result->chain_pem[len] = '\0';
                }
                BIO_free(bio);
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
    free(result->chain_pem);
    result->leaf_der = NULL;
    result->ocsp_der = NULL;
    result->chain_pem = NULL;
}

/// Every certificate in a PEM text, appended to `stack` (or added to `store` when it is not NULL).
static int read_pem_certificates(const char *pem, STACK_OF(X509) *stack, X509_STORE *store) {
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL) return -1;
    int count = 0;
    X509 *cert;
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (store != NULL) {
            X509_STORE_add_cert(store, cert);
            X509_free(cert);
        } else {
            sk_X509_push(stack, cert);
        }
        count++;
    }
    ERR_clear_error();  // the read that ends the loop leaves "no start line" behind
    BIO_free(bio);
    return count;
}

int cd_verify_chain(const unsigned char *leaf_der, size_t leaf_len, const char *chain_pem, const char *trust_pem,
                    char *error, size_t error_len) {
    int code = X509_V_ERR_UNSPECIFIED;
    const unsigned char *cursor = leaf_der;
    X509 *leaf = d2i_X509(NULL, &cursor, (long)leaf_len);
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (leaf == NULL || store == NULL || untrusted == NULL || ctx == NULL) {
        snprintf(error, error_len, "cannot parse the served leaf or set up verification");
        goto done;
    }
    if (trust_pem != NULL) {
        if (read_pem_certificates(trust_pem, NULL, store) <= 0) {
            code = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
            snprintf(error, error_len, "the trust bundle (verify.caBundle) holds no certificate");
            goto done;
        }
    } else if (X509_STORE_set_default_paths(store) != 1) {
        ERR_clear_error();
        snprintf(error, error_len, "cannot load the system trust store");
        goto done;
    }
    if (chain_pem != NULL) read_pem_certificates(chain_pem, untrusted, NULL);
    if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
        snprintf(error, error_len, "cannot start chain verification");
        goto done;
    }
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(ctx) == 1) {
        code = 0;
        error[0] = '\0';
    } else {
        code = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        char subject[256] = {0};
        X509 *at = X509_STORE_CTX_get_current_cert(ctx);
        if (at != NULL) X509_NAME_oneline(X509_get_subject_name(at), subject, sizeof(subject));
        snprintf(error, error_len, "%s (at depth %d%s%s)", X509_verify_cert_error_string(code), depth,
                 subject[0] ? ", " : "", subject);
    }
    ERR_clear_error();
done:
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(untrusted, X509_free);
    X509_STORE_free(store);
    X509_free(leaf);
    return code;
}

int cd_find_issuer(const unsigned char *cert_der, size_t len, const char *trust_pem, unsigned char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    const unsigned char *cursor = cert_der;
    X509 *cert = d2i_X509(NULL, &cursor, (long)len);
    if (cert == NULL) { ERR_clear_error(); return -1; }
    int found = 0;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (store != NULL && ctx != NULL) {
        int loaded = trust_pem != NULL ? read_pem_certificates(trust_pem, NULL, store) > 0 : X509_STORE_set_default_paths(store) == 1;
        X509 *issuer = NULL;
        if (loaded && X509_STORE_CTX_init(ctx, store, cert, NULL) == 1 && X509_STORE_CTX_get1_issuer(&issuer, ctx, cert) == 1 && issuer != NULL) {
            unsigned char *der = NULL;
            int der_len = i2d_X509(issuer, &der);
            if (der_len > 0) {
                *out = malloc((size_t)der_len);
                memcpy(*out, der, (size_t)der_len);
                *out_len = (size_t)der_len;
                found = 1;
            }
            OPENSSL_free(der);
            X509_free(issuer);
        }
    }
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(cert);
    return found;
}

int cd_check_host(const unsigned char *leaf_der, size_t leaf_len, const char *name) {
    const unsigned char *cursor = leaf_der;
    X509 *leaf = d2i_X509(NULL, &cursor, (long)leaf_len);
    if (leaf == NULL) return -1;
    int matched = X509_check_host(leaf, name, 0, 0, NULL) == 1 ? 1 : 0;
    X509_free(leaf);
    ERR_clear_error();
    return matched;
}
