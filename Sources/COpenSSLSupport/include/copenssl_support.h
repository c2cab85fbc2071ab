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
    /// The certificates the server sent after the leaf, as PEM (NUL-terminated; NULL when it sent none).
    char *chain_pem;
} cd_tls_probe_result;

/// Connects to host:port with a deadline, handshakes with SNI `server_name` (may be NULL), asks for an
/// OCSP staple when `request_status` is non-zero, and records the leaf the server sent. The chain is not
/// trusted or verified here: the caller compares the leaf's fingerprint with what it deployed.
/// Blocking: call from a thread that may block.
void cd_tls_probe(const char *host, int port, const char *server_name, int request_status, int timeout_ms,
                  cd_tls_probe_result *result);

/// Plain-text protocols that upgrade to TLS in-band before the handshake.
typedef enum { CD_STARTTLS_NONE = 0, CD_STARTTLS_SMTP = 1 } cd_starttls;

/// As cd_tls_probe, after the protocol's STARTTLS exchange (SMTP: 220 greeting, EHLO, STARTTLS, 220).
void cd_tls_probe_starttls(const char *host, int port, const char *server_name, int request_status, int timeout_ms,
                           cd_starttls starttls, cd_tls_probe_result *result);

void cd_tls_probe_result_free(cd_tls_probe_result *result);

/// What a TLS client checks of the chain: whether `leaf_der`, with the untrusted certificates in `chain_pem`
/// (may be NULL), builds a path to a trust anchor in `trust_pem`, or, when `trust_pem` is NULL, in OpenSSL's
/// default locations (the system store; SSL_CERT_FILE / SSL_CERT_DIR override them). Validity times are not
/// checked here (the caller checks them against its own clock). Returns 0 when the path builds, else OpenSSL's
/// X509_V_ERR code, with a description (and the depth it failed at) in `error`.
int cd_verify_chain(const unsigned char *leaf_der, size_t leaf_len, const char *chain_pem, const char *trust_pem,
                    char *error, size_t error_len);

/// Looks in the trust anchors (`trust_pem`, or OpenSSL's default locations when NULL) for the certificate that
/// issued `cert_der` (its subject is the issuer's name and its key checks the signature). Returns 1 and a malloc'd
/// DER copy in `*out` (free it with free()) when found, 0 when not, -1 on a parse error.
int cd_find_issuer(const unsigned char *cert_der, size_t len, const char *trust_pem, unsigned char **out, size_t *out_len);

/// 1 when `name` is a name the leaf is valid for (SAN DNS names and wildcards, OpenSSL's rules), 0 when not,
/// -1 when the leaf cannot be parsed.
int cd_check_host(const unsigned char *leaf_der, size_t leaf_len, const char *name);

#endif

#ifndef COPENSSL_SUPPORT_OCSP_H
#define COPENSSL_SUPPORT_OCSP_H

/// What an OCSP response says about one certificate, after its signature was checked.
typedef struct {
    /// 0 good, 1 revoked, 2 unknown (V_OCSP_CERTSTATUS_*).
    int cert_status;
    /// CRL reason for revoked, -1 when none.
    int revocation_reason;
    /// Seconds since the epoch; 0 when absent.
    long long this_update;
    long long next_update;
    long long revocation_time;
} cd_ocsp_single_status;

/// Builds a DER OCSPRequest (SHA-1 CertID, no nonce, as responders and caches expect) for `leaf` issued by `issuer`.
/// Returns 0 and a malloc'd buffer in *out, or -1 with a message in `error`.
int cd_ocsp_request(const unsigned char *leaf_der, size_t leaf_len, const unsigned char *issuer_der, size_t issuer_len,
                    unsigned char **out, size_t *out_len, char *error, size_t error_len);

/// Parses a DER OCSPResponse and checks it for `leaf`/`issuer`: response status successful; signed by the
/// issuer itself or by a delegated responder certificate (id-kp-OCSPSigning) that the issuer issued; a
/// SingleResponse for exactly this certificate. Times are returned, not judged (the caller owns the clock).
/// Returns 0 on success; otherwise -1 and a message in `error` (response status errors such as tryLater name it).
int cd_ocsp_check_response(const unsigned char *response_der, size_t response_len,
                           const unsigned char *leaf_der, size_t leaf_len,
                           const unsigned char *issuer_der, size_t issuer_len,
                           cd_ocsp_single_status *status, char *error, size_t error_len);

/// Minimal HTTP/1.0 client for OCSP: POSTs `body` to http://host:port/path with Content-Type
/// application/ocsp-request; connect and each read/write bounded by timeout_ms; body capped at max_len.
/// Returns the HTTP status (e.g. 200) and a malloc'd body in *out, or -1 with a message in `error`.
int cd_http_post(const char *host, int port, const char *path, const unsigned char *body, size_t body_len,
                 int timeout_ms, size_t max_len, unsigned char **out, size_t *out_len, char *error, size_t error_len);

#endif
