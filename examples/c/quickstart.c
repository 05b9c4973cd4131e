/* One request through a pool of Gemini API keys, configured by the environment.
 * Build: cc quickstart.c $(pkg-config --cflags --libs gemini_rotator) -o quickstart */
#include <stdio.h>

#include "gemini_rotator.h"

int main(void) {
    gr_pool *pool = NULL;
    gr_error *err = NULL;
    if (gr_pool_new(NULL /* read the environment */, &pool, &err) != GR_OK) {
        fprintf(stderr, "%s\n", gr_error_message(err));
        gr_error_free(err);
        return 1;
    }
    char *response = NULL, *key = NULL;
    gr_status st = gr_generate(pool, NULL /* default model */,
                               "{\"contents\":[{\"parts\":[{\"text\":\"Hello\"}]}]}",
                               0 /* max_wait_ms */, 0 /* timeout_ms: the pool's */,
                               &response, &key, &err);
    int failed = st != GR_OK;
    if (!failed) {
        printf("key %s answered: %s\n", key, response);
        gr_free(response);
        gr_free(key);
    } else {
        if (st == GR_ERR_ALL_KEYS_RATE_LIMITED)
            printf("retry in %llu ms\n", (unsigned long long)gr_error_retry_after_ms(err));
        fprintf(stderr, "%s: %s\n", gr_status_name(st), gr_error_message(err));
        gr_error_free(err);
    }
    gr_pool_free(pool);
    return failed;
}
