
/*
 * Copyright (C) The Seadragon authors
 *
 * The validation of a request body with yajl: one JSON object, nested no
 * deeper than a limit, and the two fields the gateway reads from it
 * ("model" and "stream" at the top level).  Plain C on yajl, with no
 * nginx types, so that t/fuzz/ can drive it without nginx; the module's
 * ngx_http_seadragon_body_parse() wraps it.
 *
 * The body may come in any number of pieces:
 *
 *     seadragon_json_init(&js, 512, alloc, pool);
 *     while (more) { if (seadragon_json_feed(&js, buf, len) != 0) break; }
 *     verdict = seadragon_json_finish(&js);
 *
 * A caller that stops early for its own reasons calls
 * seadragon_json_free() instead of seadragon_json_finish().
 *
 * The time is linear in the body's size however it is cut.  yajl, given
 * a piece that ends inside a token, keeps the token's start and lexes it
 * again from its first byte with every later piece: one 8 MB string fed
 * in 4k reads was lexed 2,000 times over.  So a piece is handed to yajl
 * only up to its last byte after which no token can be open (white
 * space, a bracket, a colon, a comma, a string's closing quote), and the
 * rest waits in a buffer of its own until a later piece completes it.
 * Where the pieces are cut changes the time only, never the verdict.
 */


#ifndef _NGX_HTTP_SEADRAGON_JSON_H_INCLUDED_
#define _NGX_HTTP_SEADRAGON_JSON_H_INCLUDED_


#include <stddef.h>

#include <yajl/yajl_parse.h>


/*
 * The longest "model" accepted, in bytes of UTF-8: Ollama's names are far
 * shorter, and the name is copied, logged and shown by the admin API.
 */
#define SEADRAGON_JSON_MODEL_MAX  256

/* a number as a string literal, for messages that name the limit */
#define SEADRAGON_JSON_TEXT(n)    SEADRAGON_JSON_TEXT_(n)
#define SEADRAGON_JSON_TEXT_(n)   #n


typedef enum {
    SEADRAGON_JSON_OK = 0,
    SEADRAGON_JSON_INVALID,         /* not JSON (yajl refused it) */
    SEADRAGON_JSON_NOT_OBJECT,      /* JSON, but the top is not an object */
    SEADRAGON_JSON_TOO_DEEP,        /* nested deeper than max_depth */
    SEADRAGON_JSON_EMPTY,           /* parsed, yet no value at all */
    SEADRAGON_JSON_MODEL_TOO_LONG,  /* "model" over SEADRAGON_JSON_MODEL_MAX */
    SEADRAGON_JSON_NO_MEMORY        /* the allocator or yajl failed */
} seadragon_json_verdict_e;


/* memory for the model's copy: NULL fails the parse with NO_MEMORY */
typedef void *(*seadragon_json_alloc_pt)(void *data, size_t size);


typedef struct {
    yajl_handle               parser;
    seadragon_json_alloc_pt   alloc;
    void                     *alloc_data;

    size_t                    max_depth;
    size_t                    depth;
    size_t                    values;       /* top-level values seen */
    int                       key;          /* the last top-level key */

    /* the bytes after the last point where no token was open */
    unsigned char            *held;
    size_t                    held_len;
    size_t                    held_size;

    /* results, valid after the verdict whatever it is */
    unsigned char            *model;        /* the last non-empty string */
    size_t                    model_len;    /* of a top-level "model" */

    unsigned                  stream:1;     /* the last top-level boolean */
    unsigned                  stream_set:1; /* "stream", and whether any */

    unsigned                  in_string:1;  /* where the scan has come */
    unsigned                  escaped:1;

    unsigned                  failed:1;     /* yajl said no */
    unsigned                  not_object:1;
    unsigned                  too_deep:1;
    unsigned                  model_too_long:1;
    unsigned                  no_memory:1;
} seadragon_json_t;


/* 0, or -1 when yajl cannot allocate its parser */
int seadragon_json_init(seadragon_json_t *js, size_t max_depth,
    seadragon_json_alloc_pt alloc, void *alloc_data);

/*
 * 0: go on feeding; -1: the verdict is known (an error), stop.  Feeding
 * after -1 changes nothing.
 */
int seadragon_json_feed(seadragon_json_t *js, const unsigned char *buf,
    size_t len);

/* the end of the body: the verdict; the parser is freed */
seadragon_json_verdict_e seadragon_json_finish(seadragon_json_t *js);

/* frees the parser without a verdict; safe to call twice */
void seadragon_json_free(seadragon_json_t *js);


#endif /* _NGX_HTTP_SEADRAGON_JSON_H_INCLUDED_ */
