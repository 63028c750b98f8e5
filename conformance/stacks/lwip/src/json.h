/* A small JSON reader and writer for the agent's line protocol.
 *
 * Requests are one JSON object per line; values are read into a tree of
 * struct jval that the caller frees with jval_free().  Numbers keep the
 * distinction Python's json module makes: a token with '.', 'e' or 'E' is a
 * float, any other is an int, so "1" and "1.0" are told apart as in the
 * Linux agent.  Responses are built in a growable buffer (struct jbuf) and
 * written with ensure_ascii escaping, as Python's json.dumps does. */
#ifndef TCPCONF_JSON_H
#define TCPCONF_JSON_H

#include <stddef.h>

enum jtype { J_NULL, J_BOOL, J_INT, J_FLOAT, J_STR, J_OBJ, J_ARR };

struct jval {
    enum jtype type;
    int boolean;
    long long integer;
    double number;
    char *str;            /* J_STR: UTF-8, NUL-terminated (may contain NUL) */
    size_t len;           /* J_STR: byte length; J_OBJ/J_ARR: element count */
    char **keys;          /* J_OBJ: member names */
    struct jval *items;   /* J_OBJ: member values; J_ARR: elements */
};

/* Parse exactly one JSON value (surrounding whitespace allowed).  Returns 0
 * and fills *out, or -1 with a message in err. */
int json_parse(const char *text, size_t len, struct jval *out,
               char *err, size_t errlen);
void jval_free(struct jval *v);
const struct jval *jobj_get(const struct jval *obj, const char *key);
/* Python's name for the type of a value (str, int, dict, NoneType...). */
const char *jtype_name(const struct jval *v);

struct jbuf {
    char *data;
    size_t len, cap;
    int failed;           /* out of memory at some point */
};

void jb_init(struct jbuf *b);
void jb_free(struct jbuf *b);
void jb_raw(struct jbuf *b, const char *s, size_t n);
void jb_cstr(struct jbuf *b, const char *s);
void jb_printf(struct jbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A JSON string literal; the bytes must be valid UTF-8 (invalid bytes are
 * written as U+FFFD). */
void jb_string(struct jbuf *b, const char *s, size_t n);
/* ", "key": " */
void jb_key(struct jbuf *b, const char *key);

/* Strict UTF-8 check (no overlongs, surrogates or values past U+10FFFF),
 * as Python's bytes.decode("utf-8"). */
int utf8_valid(const unsigned char *s, size_t n);

/* Base64 (RFC 4648, with padding). decode is strict like Python's
 * b64decode(validate=True); returns -1 on bad input.  *out is malloc'ed. */
char *b64_encode(const unsigned char *data, size_t n);
int b64_decode(const char *text, size_t n, unsigned char **out, size_t *outlen);

#endif
