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
    gr_response *resp = NULL;
    gr_status st = gr_generate(pool, NULL /* default model */,
                               "{\"contents\":[{\"parts\":[{\"text\":\"Hello\"}]}]}",
                               0 /* max_wait_ms */, 0 /* timeout_ms: the pool's */, &resp, &err);
    int failed = st != GR_OK;
    if (!failed) {
        size_t len = 0;
        const char *body = gr_response_body(resp, &len); /* bytes: a NUL in them is data */
        printf("key %s answered: ", gr_response_key_fingerprint(resp));
        fwrite(body, 1, len, stdout);
        printf("\n");
        gr_response_free(resp);
    } else {
        if (st == GR_ERR_ALL_KEYS_RATE_LIMITED)
            printf("retry in %llu ms\n", (unsigned long long)gr_error_retry_after_ms(err));
        fprintf(stderr, "%s: %s\n", gr_status_name(st), gr_error_message(err));
        gr_error_free(err);
    }
    gr_pool_free(pool);
    return failed;
}
