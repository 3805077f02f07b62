// The tap's Ed25519 (RFC 8032, pure) as a MicroPython dynamic native module: Monocypher's curve
// arithmetic (monocypher.c, vendored, BSD-2-Clause OR CC0-1.0) with SHA-512 (sha512.c), which
// Monocypher's own EdDSA does not use (it hashes with BLAKE2b). Imported as tap.ed25519_native;
// tap.ed25519 uses it when it is there and its own Python otherwise.
//
//   public_key(seed) -> 32 bytes
//   sign(seed, public_key, message) -> 64 bytes
//   verify(public_key, message, signature) -> bool
#include "py/dynruntime.h"
#include "monocypher.h"
#include "sha512.h"

static const uint8_t *buffer_of(mp_obj_t obj, size_t want, size_t *len) {
    mp_buffer_info_t info;
    mp_get_buffer_raise(obj, &info, MP_BUFFER_READ);
    if (want && info.len != want) {
        mp_raise_ValueError(want == 32 ? MP_ERROR_TEXT("need 32 bytes") : MP_ERROR_TEXT("need 64 bytes"));
    }
    if (len) {
        *len = info.len;
    }
    return info.buf;
}

// The secret scalar a (clamped) and the nonce prefix from the seed (RFC 8032 5.1.5).
static void expand(uint8_t a[32], uint8_t prefix[32], const uint8_t seed[32]) {
    uint8_t h[64];
    tap_sha512_3(h, seed, 32, NULL, 0, NULL, 0);
    crypto_eddsa_trim_scalar(a, h);
    for (int i = 0; i < 32; i++) {
        prefix[i] = h[32 + i];
    }
    crypto_wipe(h, sizeof(h));
}

static void hash_reduce(uint8_t out[32], const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                        const uint8_t *c, size_t c_len) {
    uint8_t h[64];
    tap_sha512_3(h, a, a_len, b, b_len, c, c_len);
    crypto_eddsa_reduce(out, h);
}

static mp_obj_t public_key(mp_obj_t seed_obj) {
    const uint8_t *seed = buffer_of(seed_obj, 32, NULL);
    uint8_t a[32], prefix[32], point[32];
    expand(a, prefix, seed);
    crypto_eddsa_scalarbase(point, a);
    crypto_wipe(a, sizeof(a));
    crypto_wipe(prefix, sizeof(prefix));
    return mp_obj_new_bytes(point, 32);
}
static MP_DEFINE_CONST_FUN_OBJ_1(public_key_obj, public_key);

static mp_obj_t sign(mp_obj_t seed_obj, mp_obj_t public_key_obj, mp_obj_t message_obj) {
    const uint8_t *seed = buffer_of(seed_obj, 32, NULL);
    const uint8_t *pk = buffer_of(public_key_obj, 32, NULL);
    size_t message_len;
    const uint8_t *message = buffer_of(message_obj, 0, &message_len);
    uint8_t a[32], prefix[32], r[32], k[32], signature[64];
    expand(a, prefix, seed);
    hash_reduce(r, prefix, 32, message, message_len, NULL, 0);
    crypto_eddsa_scalarbase(signature, r);                                  // R
    hash_reduce(k, signature, 32, pk, 32, message, message_len);
    crypto_eddsa_mul_add(signature + 32, k, a, r);                           // S = k * a + r mod L
    crypto_wipe(a, sizeof(a));
    crypto_wipe(prefix, sizeof(prefix));
    crypto_wipe(r, sizeof(r));
    return mp_obj_new_bytes(signature, 64);
}
static MP_DEFINE_CONST_FUN_OBJ_3(sign_obj, sign);

static mp_obj_t verify(mp_obj_t public_key_obj, mp_obj_t message_obj, mp_obj_t signature_obj) {
    const uint8_t *pk = buffer_of(public_key_obj, 32, NULL);
    size_t message_len, signature_len;
    const uint8_t *message = buffer_of(message_obj, 0, &message_len);
    const uint8_t *signature = buffer_of(signature_obj, 0, &signature_len);
    if (signature_len != 64) {
        return mp_const_false;
    }
    uint8_t k[32];
    hash_reduce(k, signature, 32, pk, 32, message, message_len);
    // 0 when S < L, A is a point and [S]B = R + [k]A; Monocypher refuses a non-canonical S.
    return mp_obj_new_bool(crypto_eddsa_check_equation(signature, pk, k) == 0);
}
static MP_DEFINE_CONST_FUN_OBJ_3(verify_obj, verify);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_public_key, MP_OBJ_FROM_PTR(&public_key_obj));
    mp_store_global(MP_QSTR_sign, MP_OBJ_FROM_PTR(&sign_obj));
    mp_store_global(MP_QSTR_verify, MP_OBJ_FROM_PTR(&verify_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
