/*
 * sha256.h - SHA-256 (FIPS 180-4), for the content hashes of artifacts
 * (internal). No dependency: a plain implementation of the standard.
 */
#ifndef MS_DEPLOY_SHA256_H
#define MS_DEPLOY_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "mainstack/status.h"

#define MS__SHA256_HEX_LEN 64

typedef struct ms__sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes hashed */
    uint8_t buf[64];
    size_t used; /* bytes in buf */
} ms__sha256;

void ms__sha256_init(ms__sha256 *c);
void ms__sha256_update(ms__sha256 *c, const void *data, size_t len);
/* The digest; c is spent. */
void ms__sha256_final(ms__sha256 *c, uint8_t out[32]);
/* The lowercase hex digest of len bytes. */
void ms__sha256_hex(const void *data, size_t len, char out[MS__SHA256_HEX_LEN + 1]);
/* The lowercase hex digest of a file's content. MS_ERR_IO naming the file. */
ms_status ms__sha256_file(const char *path, char out[MS__SHA256_HEX_LEN + 1]);

#endif
