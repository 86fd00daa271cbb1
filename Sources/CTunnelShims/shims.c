#include <malloc.h>
#include <sys/epoll.h>
#include <stdlib.h>
#include "CTunnelShims.h"

long CTunnelShims_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) { return SSL_CTX_set_min_proto_version(ctx, version); }
long CTunnelShims_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
long CTunnelShims_BIO_get_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }
EVP_PKEY *CTunnelShims_EVP_EC_gen(const char *curve) { return EVP_EC_gen(curve); }
void CTunnelShims_OPENSSL_free(void *pointer) { OPENSSL_free(pointer); }
int CTunnelShims_sk_GENERAL_NAME_num(const STACK_OF(GENERAL_NAME) *names) { return sk_GENERAL_NAME_num(names); }
GENERAL_NAME *CTunnelShims_sk_GENERAL_NAME_value(const STACK_OF(GENERAL_NAME) *names, int index) { return sk_GENERAL_NAME_value(names, index); }
void CTunnelShims_GENERAL_NAMES_free(STACK_OF(GENERAL_NAME) *names) { GENERAL_NAMES_free(names); }
int CTunnelShims_sk_X509_num(const STACK_OF(X509) *certificates) { return sk_X509_num(certificates); }
X509 *CTunnelShims_sk_X509_value(const STACK_OF(X509) *certificates, int index) { return sk_X509_value(certificates, index); }
long CTunnelShims_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
long CTunnelShims_SSL_CTX_set_options(SSL_CTX *ctx, long options) { return (long)SSL_CTX_set_options(ctx, (uint64_t)options); }
long CTunnelShims_SSL_OP_NO_RENEGOTIATION(void) { return (long)SSL_OP_NO_RENEGOTIATION; }
long CTunnelShims_SSL_MODE_RELEASE_BUFFERS(void) { return SSL_MODE_RELEASE_BUFFERS; }
long CTunnelShims_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER(void) { return SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER; }
long CTunnelShims_SSL_MODE_ENABLE_PARTIAL_WRITE(void) { return SSL_MODE_ENABLE_PARTIAL_WRITE; }
long CTunnelShims_SSL_CTX_add_extra_chain_cert(SSL_CTX *ctx, X509 *certificate) { return SSL_CTX_add_extra_chain_cert(ctx, certificate); }
long CTunnelShims_BIO_set_mem_eof_return(BIO *bio, int value) { return BIO_set_mem_eof_return(bio, value); }
int CTunnelShims_sk_GENERAL_NAME_push(STACK_OF(GENERAL_NAME) *names, GENERAL_NAME *name) { return sk_GENERAL_NAME_push(names, name); }
long CTunnelShims_SSL_MODE_NO_AUTO_CHAIN(void) { return SSL_MODE_NO_AUTO_CHAIN; }

int CTunnelShims_tune_malloc(int mmap_threshold, int trim_threshold) {
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) && mallopt(M_TRIM_THRESHOLD, trim_threshold);
}

int CTunnelShims_epoll_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

int CTunnelShims_epoll_add(int epoll, int fd, void *pointer) {
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data = {.ptr = pointer}};
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

int CTunnelShims_epoll_remove(int epoll, int fd) {
    struct epoll_event unused = {0};
    return epoll_ctl(epoll, EPOLL_CTL_DEL, fd, &unused);
}

int CTunnelShims_epoll_wait(int epoll, CTunnelShims_event *events, int capacity) {
    struct epoll_event raw[256];
    if (capacity > 256) capacity = 256;
    int count = epoll_wait(epoll, raw, capacity, -1);
    for (int index = 0; index < count; index++) {
        events[index].events = raw[index].events;
        events[index].pointer = raw[index].data.ptr;
    }
    return count;
}
