#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* EVP_PKEY_ED25519 is a macro naming another macro; one function gives Swift the number. */
static inline int dispatcher_evp_pkey_ed25519(void) { return EVP_PKEY_ED25519; }
