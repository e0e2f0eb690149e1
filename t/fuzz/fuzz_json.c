
/*
 * Copyright (C) The Seadragon authors
 *
 * The request-body check (ngx_seadragon_module/ngx_http_seadragon_json.c)
 * on any bytes.  Besides no crash, no leak and no undefined behaviour:
 *
 *  - the verdict, the model and the stream flag do not depend on how the
 *    body is cut into pieces (nginx hands it over in buffers and 4k reads);
 *  - a feed that said stop keeps saying stop;
 *  - when the model cannot be copied the verdict is "no memory", never a
 *    pass; the unit never says "empty" (yajl refuses an empty body);
 *  - against yajl's tree parser, an independent reading of the same
 *    bytes: a body the tree refuses is never accepted; one it accepts is
 *    accepted unless it is not an object (refused as such), nested
 *    deeper than the limit (refused as such) or holds a comment (which
 *    the tree allows and the gateway does not); and an accepted body's
 *    model and stream are the last top-level "model" string that is not
 *    empty and the last top-level "stream" boolean, with the gateway's
 *    limit of 512 and with a small one;
 *  - a top-level "model" string longer than SEADRAGON_JSON_MODEL_MAX is
 *    refused as such (or as too deep, whichever comes first), and that
 *    verdict is given for nothing else;
 *  - pieces cut anywhere take time linear in the body's size: yajl never
 *    keeps a token for a later piece (libFuzzer's -timeout catches it).
 */


#include "fuzz.h"
#include "ngx_http_seadragon_json.h"

#include <string.h>
#include <yajl/yajl_tree.h>


#define FUZZ_JSON_MAX_DEPTH     512     /* NGX_HTTP_SEADRAGON_JSON_MAX_DEPTH */
#define FUZZ_JSON_TREE_NESTING  2048    /* beyond: the oracle would recurse */


typedef struct {
    void      **blocks;
    size_t      n;
    size_t      calls;
    int         fail;
} fuzz_arena_t;


typedef struct {
    seadragon_json_verdict_e   verdict;
    uint8_t                   *model;       /* a copy, or NULL */
    size_t                     model_len;
    int                        stream;
    int                        stream_set;
    size_t                     allocs;
} fuzz_json_result_t;


static void *
fuzz_arena_alloc(void *data, size_t size)
{
    void          *p, **blocks;
    fuzz_arena_t  *arena = data;

    arena->calls++;

    if (arena->fail) {
        return NULL;
    }

    blocks = realloc(arena->blocks, (arena->n + 1) * sizeof(void *));
    fuzz_check(blocks != NULL, "out of memory");
    arena->blocks = blocks;

    p = malloc(size);
    fuzz_check(p != NULL, "out of memory");

    arena->blocks[arena->n++] = p;

    return p;
}


static void
fuzz_arena_free(fuzz_arena_t *arena)
{
    for (size_t i = 0; i < arena->n; i++) {
        free(arena->blocks[i]);
    }

    free(arena->blocks);
}


/* the body fed whole (seed 0) or in pieces of 1 to 16 bytes */

static void
fuzz_json_run(const uint8_t *data, size_t size, size_t max_depth,
    uint32_t seed, int fail, fuzz_json_result_t *res)
{
    int               rc;
    size_t            off, n;
    fuzz_arena_t      arena;
    seadragon_json_t  js;

    memset(&arena, 0, sizeof(fuzz_arena_t));
    arena.fail = fail;

    rc = seadragon_json_init(&js, max_depth, fuzz_arena_alloc, &arena);
    fuzz_check(rc == 0, "init failed");

    rc = 0;

    for (off = 0; off < size; off += n) {
        if (seed == 0) {
            n = size;

        } else {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            n = 1 + seed % 16;
            n = n < size - off ? n : size - off;
        }

        rc = seadragon_json_feed(&js, data + off, n);
        if (rc != 0) {
            break;
        }
    }

    if (rc != 0) {
        fuzz_check(seadragon_json_feed(&js, (const unsigned char *) "{", 1)
                   == -1, "a feed after a stop was taken");
    }

    res->verdict = seadragon_json_finish(&js);
    res->stream = js.stream;
    res->stream_set = js.stream_set;
    res->allocs = arena.calls;
    res->model_len = js.model_len;
    res->model = NULL;

    if (js.model_len) {
        fuzz_check(js.model != NULL, "a model length without a model");
        res->model = malloc(js.model_len);
        fuzz_check(res->model != NULL, "out of memory");
        memcpy(res->model, js.model, js.model_len);
    }

    seadragon_json_free(&js);      /* a second free is harmless */
    fuzz_arena_free(&arena);
}


static int
fuzz_json_same(const fuzz_json_result_t *a, const fuzz_json_result_t *b)
{
    return a->verdict == b->verdict
           && a->model_len == b->model_len
           && (a->model_len == 0
               || memcmp(a->model, b->model, a->model_len) == 0)
           && a->stream == b->stream
           && a->stream_set == b->stream_set;
}


/*
 * Whether the bytes hold anything that is not well-formed UTF-8, by the
 * byte ranges of Unicode's table 3-7 (an independent reading of what the
 * unit checks by decoding): yajl itself lets overlong forms and code
 * points past U+10FFFF through, the gateway does not.  Surrogates (ED A0
 * to ED BF) are allowed, as yajl decodes a lone low surrogate escape into
 * them.
 */

static int
fuzz_json_loose_utf8(const uint8_t *d, size_t size)
{
    size_t   i, n, k;
    uint8_t  lo, hi;

    for (i = 0; i < size; i += n) {
        lo = 0x80;
        hi = 0xbf;

        if (d[i] < 0x80) {
            n = 1;
            continue;
        }

        if (d[i] >= 0xc2 && d[i] <= 0xdf) {
            n = 2;
        } else if (d[i] >= 0xe0 && d[i] <= 0xef) {
            n = 3;
            lo = d[i] == 0xe0 ? 0xa0 : 0x80;
        } else if (d[i] >= 0xf0 && d[i] <= 0xf4) {
            n = 4;
            lo = d[i] == 0xf0 ? 0x90 : 0x80;
            hi = d[i] == 0xf4 ? 0x8f : 0xbf;
        } else {
            return 1;
        }

        if (size - i < n || d[i + 1] < lo || d[i + 1] > hi) {
            return 1;
        }

        for (k = 2; k < n; k++) {
            if (d[i + k] < 0x80 || d[i + k] > 0xbf) {
                return 1;
            }
        }
    }

    return 0;
}


/*
 * The deepest nesting of brackets outside strings; comments; and whether
 * the bytes end inside a string ('{} "abc', which yajl's tree accepts)
 */

static size_t
fuzz_json_scan(const uint8_t *data, size_t size, int *comment,
    int *open_string)
{
    int     in_string, escaped;
    size_t  i, depth, max;

    in_string = 0;
    escaped = 0;
    depth = 0;
    max = 0;
    *comment = 0;

    for (i = 0; i < size; i++) {
        if (in_string) {
            if (escaped) {
                escaped = 0;

            } else if (data[i] == '\\') {
                escaped = 1;

            } else if (data[i] == '"') {
                in_string = 0;
            }

            continue;
        }

        switch (data[i]) {
        case '"':
            in_string = 1;
            break;
        case '[':
        case '{':
            if (++depth > max) {
                max = depth;
            }
            break;
        case ']':
        case '}':
            if (depth) {
                depth--;
            }
            break;
        case '/':
            *comment = 1;
            break;
        }
    }

    *open_string = in_string;

    return max;
}


static size_t
fuzz_json_tree_depth(yajl_val v)
{
    size_t  i, d, max;

    max = 0;

    if (YAJL_IS_OBJECT(v)) {
        for (i = 0; i < v->u.object.len; i++) {
            d = fuzz_json_tree_depth(v->u.object.values[i]);
            max = d > max ? d : max;
        }

        return 1 + max;
    }

    if (YAJL_IS_ARRAY(v)) {
        for (i = 0; i < v->u.array.len; i++) {
            d = fuzz_json_tree_depth(v->u.array.values[i]);
            max = d > max ? d : max;
        }

        return 1 + max;
    }

    return 0;
}


/* whether the tree has a top-level "model" string over the limit */

static int
fuzz_json_long_model(yajl_val tree)
{
    size_t  i;

    for (i = 0; i < tree->u.object.len; i++) {
        yajl_val  v = tree->u.object.values[i];

        if (strcmp(tree->u.object.keys[i], "model") == 0
            && YAJL_IS_STRING(v)
            && strlen(v->u.string) > SEADRAGON_JSON_MODEL_MAX)
        {
            return 1;
        }
    }

    return 0;
}


/* what the tree says of an object the unit accepted */

static void
fuzz_json_check_fields(yajl_val tree, const fuzz_json_result_t *res,
    int nul_in_strings)
{
    size_t       i;
    const char  *model;
    int          stream, stream_set;

    model = NULL;
    stream = 0;
    stream_set = 0;

    for (i = 0; i < tree->u.object.len; i++) {
        yajl_val  v = tree->u.object.values[i];

        if (strcmp(tree->u.object.keys[i], "model") == 0
            && YAJL_IS_STRING(v) && v->u.string[0] != '\0')
        {
            model = v->u.string;
        }

        if (strcmp(tree->u.object.keys[i], "stream") == 0
            && (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)))
        {
            stream = YAJL_IS_TRUE(v);
            stream_set = 1;
        }
    }

    if (nul_in_strings) {
        return;         /* the tree's C strings, keys too, end at \u0000 */
    }

    fuzz_check(res->stream_set == stream_set && res->stream == stream,
               "stream %d (set %d), the tree says %d (set %d)",
               res->stream, res->stream_set, stream, stream_set);

    if (model == NULL) {
        fuzz_check(res->model_len == 0, "a model the tree does not see");
        return;
    }

    fuzz_check(res->model_len == strlen(model)
               && memcmp(res->model, model, res->model_len) == 0,
               "model \"%.*s\", the tree says \"%s\"",
               (int) res->model_len, (char *) res->model, model);
}


/* the expectations from yajl's tree for a limit of max_depth */

static void
fuzz_json_oracle(yajl_val tree, int comment, int open_string,
    size_t max_depth, const fuzz_json_result_t *res, int nul_in_strings,
    int loose_utf8)
{
    int  long_model;

    if (loose_utf8) {
        fuzz_check(res->verdict != SEADRAGON_JSON_OK,
                   "accepted bytes that are not well-formed UTF-8");
    }

    if (tree == NULL || open_string) {
        fuzz_check(res->verdict != SEADRAGON_JSON_OK,
                   "accepted what yajl's tree refuses or a string that "
                   "never ends");
        return;
    }

    if (res->verdict == SEADRAGON_JSON_INVALID) {
        fuzz_check(comment || loose_utf8,
                   "refused valid JSON without a comment or loose UTF-8");
        return;
    }

    if (!YAJL_IS_OBJECT(tree)) {
        fuzz_check(res->verdict == SEADRAGON_JSON_NOT_OBJECT,
                   "verdict %d for a value that is not an object",
                   (int) res->verdict);
        return;
    }

    /* the tree's strings end at a \u0000: their length is unknown then */

    long_model = fuzz_json_long_model(tree);

    if (res->verdict == SEADRAGON_JSON_MODEL_TOO_LONG) {
        fuzz_check(long_model || nul_in_strings,
                   "a model too long that the tree does not see");
        return;
    }

    if (fuzz_json_tree_depth(tree) > max_depth) {
        fuzz_check(res->verdict == SEADRAGON_JSON_TOO_DEEP,
                   "verdict %d for depth %zu over %zu", (int) res->verdict,
                   fuzz_json_tree_depth(tree), max_depth);
        return;
    }

    fuzz_check(!long_model || nul_in_strings,
               "verdict %d for a model longer than %d bytes",
               (int) res->verdict, SEADRAGON_JSON_MODEL_MAX);

    fuzz_check(res->verdict == SEADRAGON_JSON_OK,
               "verdict %d for an object of depth %zu within %zu",
               (int) res->verdict, fuzz_json_tree_depth(tree), max_depth);

    fuzz_json_check_fields(tree, res, nul_in_strings);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 comment, open_string, nul_in_strings, loose;
    char               *text, error[128];
    size_t              nesting, small;
    uint32_t            seed;
    yajl_val            tree;
    fuzz_json_result_t  whole, pieces, nomem, shallow;

    fuzz_json_run(data, size, FUZZ_JSON_MAX_DEPTH, 0, 0, &whole);

    fuzz_check(whole.verdict != SEADRAGON_JSON_EMPTY,
               "an empty verdict: yajl refuses an empty body");
    fuzz_check(whole.verdict != SEADRAGON_JSON_NO_MEMORY,
               "no memory with an allocator that does not fail");
    fuzz_check(size > 0 || whole.verdict == SEADRAGON_JSON_INVALID,
               "verdict %d for an empty body", (int) whole.verdict);

    /* in pieces: the same verdict and fields */

    seed = 2166136261u;
    for (size_t i = 0; i < size; i++) {
        seed = (seed ^ data[i]) * 16777619u;
    }

    fuzz_json_run(data, size, FUZZ_JSON_MAX_DEPTH, seed | 1, 0, &pieces);

    fuzz_check(fuzz_json_same(&whole, &pieces),
               "in pieces: verdict %d model %zu stream %d/%d, "
               "whole: verdict %d model %zu stream %d/%d",
               (int) pieces.verdict, pieces.model_len, pieces.stream,
               pieces.stream_set, (int) whole.verdict, whole.model_len,
               whole.stream, whole.stream_set);

    /* an allocator that fails */

    fuzz_json_run(data, size, FUZZ_JSON_MAX_DEPTH, 0, 1, &nomem);

    if (whole.allocs) {
        fuzz_check(nomem.verdict == SEADRAGON_JSON_NO_MEMORY
                   && nomem.model_len == 0,
                   "verdict %d when the model could not be copied",
                   (int) nomem.verdict);

    } else {
        fuzz_check(fuzz_json_same(&whole, &nomem),
                   "an allocator never called changed the result");
    }

    /* a small limit, from the last byte */

    small = size ? 1 + data[size - 1] % 8 : 1;
    fuzz_json_run(data, size, small, 0, 0, &shallow);

    /* yajl's tree, for bytes it can read as a C string */

    nesting = fuzz_json_scan(data, size, &comment, &open_string);

    if (memchr(data, '\0', size) == NULL && nesting <= FUZZ_JSON_TREE_NESTING)
    {
        text = malloc(size + 1);
        fuzz_check(text != NULL, "out of memory");
        memcpy(text, data, size);
        text[size] = '\0';

        nul_in_strings = strstr(text, "\\u0000") != NULL;

        tree = yajl_tree_parse(text, error, sizeof(error));

        loose = fuzz_json_loose_utf8(data, size);

        fuzz_json_oracle(tree, comment, open_string, FUZZ_JSON_MAX_DEPTH,
                         &whole, nul_in_strings, loose);
        fuzz_json_oracle(tree, comment, open_string, small, &shallow,
                         nul_in_strings, loose);

        yajl_tree_free(tree);
        free(text);
    }

    free(whole.model);
    free(pieces.model);
    free(nomem.model);
    free(shallow.model);

    return 0;
}
