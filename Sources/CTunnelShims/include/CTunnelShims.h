#ifndef CTUNNELSHIMS_H
#define CTUNNELSHIMS_H
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <openssl/evp.h>

/* One line each: OpenSSL macros Swift cannot import. */
long CTunnelShims_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
long CTunnelShims_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
long CTunnelShims_BIO_get_mem_data(BIO *bio, char **data);
EVP_PKEY *CTunnelShims_EVP_EC_gen(const char *curve);
void CTunnelShims_OPENSSL_free(void *pointer);
int CTunnelShims_sk_GENERAL_NAME_num(const STACK_OF(GENERAL_NAME) *names);
GENERAL_NAME *CTunnelShims_sk_GENERAL_NAME_value(const STACK_OF(GENERAL_NAME) *names, int index);
void CTunnelShims_GENERAL_NAMES_free(STACK_OF(GENERAL_NAME) *names);
int CTunnelShims_sk_X509_num(const STACK_OF(X509) *certificates);
X509 *CTunnelShims_sk_X509_value(const STACK_OF(X509) *certificates, int index);
long CTunnelShims_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
long CTunnelShims_SSL_CTX_set_options(SSL_CTX *ctx, long options);
long CTunnelShims_SSL_OP_NO_RENEGOTIATION(void);
long CTunnelShims_SSL_MODE_RELEASE_BUFFERS(void);
long CTunnelShims_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER(void);
long CTunnelShims_SSL_MODE_ENABLE_PARTIAL_WRITE(void);
long CTunnelShims_SSL_CTX_add_extra_chain_cert(SSL_CTX *ctx, X509 *certificate);
long CTunnelShims_BIO_set_mem_eof_return(BIO *bio, int value);
int CTunnelShims_sk_GENERAL_NAME_push(STACK_OF(GENERAL_NAME) *names, GENERAL_NAME *name);
long CTunnelShims_SSL_MODE_NO_AUTO_CHAIN(void);
/* glibc's mallopt with M_MMAP_THRESHOLD and M_TRIM_THRESHOLD, which <malloc.h> does not give Swift. */
int CTunnelShims_tune_malloc(int mmap_threshold, int trim_threshold);
/* epoll, through a plain struct: epoll_event is packed on x86-64, which Swift does not import faithfully. */
#include <stdint.h>
typedef struct { uint32_t events; void *pointer; } CTunnelShims_event;
static const uint32_t CTunnelShims_EVENT_IN = 0x001;     /* EPOLLIN */
static const uint32_t CTunnelShims_EVENT_OUT = 0x004;    /* EPOLLOUT */
static const uint32_t CTunnelShims_EVENT_ERR = 0x008;    /* EPOLLERR */
static const uint32_t CTunnelShims_EVENT_HUP = 0x010;    /* EPOLLHUP */
static const uint32_t CTunnelShims_EVENT_RDHUP = 0x2000; /* EPOLLRDHUP */
int CTunnelShims_epoll_create(void);
/* Watches fd for input, output and peer half-close, edge-triggered; events carry `pointer`. */
int CTunnelShims_epoll_add(int epoll, int fd, void *pointer);
int CTunnelShims_epoll_remove(int epoll, int fd);
int CTunnelShims_epoll_wait(int epoll, CTunnelShims_event *events, int capacity);
#endif
