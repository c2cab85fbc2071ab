#ifndef COPENSSL_SUPPORT_H
#define COPENSSL_SUPPORT_H

#include <stddef.h>

/// Result of one TLS handshake made to see what a server serves.
/// Buffers are malloc'd; release them with cd_tls_probe_result_free.
typedef struct {
    /// 0 on a completed handshake; otherwise an errno-like or OpenSSL failure, described in `error`.
    int status;
    char error[512];
    unsigned char *leaf_der;
    size_t leaf_der_len;
    /// The stapled OCSP response (DER), when one was asked for and sent.
    unsigned char *ocsp_der;
    size_t ocsp_der_len;
    /// Negotiated protocol, e.g. "TLSv1.3".
    char protocol[32];
} cd_tls_probe_result;

/// Connects to host:port with a deadline, handshakes with SNI `server_name` (may be NULL), asks for an
/// OCSP staple when `request_status` is non-zero, and records the leaf the server sent. The chain is not
/// trusted or verified here: the caller compares the leaf's fingerprint with what it deployed.
/// Blocking: call from a thread that may block.
void cd_tls_probe(const char *host, int port, const char *server_name, int request_status, int timeout_ms,
                  cd_tls_probe_result *result);

void cd_tls_probe_result_free(cd_tls_probe_result *result);

#endif
