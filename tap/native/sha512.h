// SHA-512 (FIPS 180-4) for the tap's native Ed25519: one call over up to three pieces, as RFC 8032
// hashes them (prefix || message, R || A || message). No library: a MicroPython native module
// links no libc.
#ifndef TAP_SHA512_H
#define TAP_SHA512_H
#include <stddef.h>
#include <stdint.h>

void tap_sha512_3(uint8_t digest[64], const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                  const uint8_t *c, size_t c_len);

#endif
