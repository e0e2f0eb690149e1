
/*
 * Copyright (C) The Seadragon authors
 *
 * What the harnesses in t/fuzz/ share.  Each defines
 * LLVMFuzzerTestOneInput() (and may define LLVMFuzzerInitialize()); it is
 * built twice: with clang's libFuzzer for `make fuzz`, and with gcc and
 * t/fuzz/replay.c for t/019-fuzz-regressions.t, which replays the
 * corpora and the regressions under ASan and UBSan.
 *
 * A harness checks properties, not only the absence of a crash: a
 * property that does not hold is reported and aborts, which both drivers
 * count as a failure.
 */


#ifndef _SEADRAGON_FUZZ_H_INCLUDED_
#define _SEADRAGON_FUZZ_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>


#define fuzz_check(cond, ...)                                                \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__,         \
                    __LINE__, #cond);                                         \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            abort();                                                          \
        }                                                                     \
    } while (0)


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* the input read front to back; past its end, zeros */

typedef struct {
    const uint8_t  *p;
    size_t          left;
} fuzz_input_t;


static inline uint8_t
fuzz_byte(fuzz_input_t *in)
{
    if (in->left == 0) {
        return 0;
    }

    in->left--;
    return *in->p++;
}


static inline uint32_t
fuzz_u32(fuzz_input_t *in)
{
    uint32_t  v;

    v = fuzz_byte(in);
    v |= (uint32_t) fuzz_byte(in) << 8;
    v |= (uint32_t) fuzz_byte(in) << 16;
    v |= (uint32_t) fuzz_byte(in) << 24;

    return v;
}


/* up to max bytes, fewer when the input ends: returns how many */

static inline size_t
fuzz_bytes(fuzz_input_t *in, uint8_t *buf, size_t max)
{
    size_t  n;

    n = max < in->left ? max : in->left;

    for (size_t i = 0; i < n; i++) {
        buf[i] = in->p[i];
    }

    in->p += n;
    in->left -= n;

    return n;
}


#endif /* _SEADRAGON_FUZZ_H_INCLUDED_ */
