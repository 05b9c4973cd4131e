/*
 * json.h: a small, strict JSON reader for the C tests (RFC 8259: objects, arrays, strings with
 * every escape, numbers, true/false/null; nothing after the value but whitespace).
 *
 * The tests use it to read what the library and the emulator return: gr_stats_json, the
 * response of gr_generate, and the emulator's /_emulator/stats and /_emulator/log.
 */
#ifndef GR_TEST_JSON_H
#define GR_TEST_JSON_H

#include <stddef.h>

typedef enum {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type;

typedef struct json_value json_value;

struct json_value {
    json_type type;
    int boolean;        /* JSON_BOOL */
    double number;      /* JSON_NUMBER */
    char *string;       /* JSON_STRING: UTF-8, NUL-terminated (an embedded \u0000 ends it) */
    size_t count;       /* JSON_ARRAY, JSON_OBJECT: number of items */
    json_value **items; /* JSON_ARRAY, JSON_OBJECT: the values */
    char **keys;        /* JSON_OBJECT: the member names, parallel to items */
};

/* Parses `text`. NULL on error, with a description (and byte offset) in `error`. */
json_value *json_parse(const char *text, char *error, size_t error_size);

void json_free(json_value *value);

/* The member `key` of an object, or NULL (also when `object` is NULL or not an object). */
const json_value *json_get(const json_value *object, const char *key);

/* Item `index` of an array, or NULL. */
const json_value *json_at(const json_value *array, size_t index);

/* A path of member names separated by '.', e.g. "pool.latency.count"; NULL if any is missing. */
const json_value *json_path(const json_value *root, const char *path);

/* The number at `path`, or `fallback` when it is missing or not a number. */
double json_number_at(const json_value *root, const char *path, double fallback);

/* The string at `path`, or NULL when it is missing or not a string. */
const char *json_string_at(const json_value *root, const char *path);

#endif /* GR_TEST_JSON_H */
