/*
 * guide.c — guide a user toward a target with a trained ProRL run.
 *
 *   guide RUN_DIR TARGET_ID ITEM_ID...
 *
 * Loads the run (its best policy, simulator and catalogue), generates three
 * paths from the user's history (the ITEM_IDs, oldest first) toward the
 * target, and prints each with titles and the simulator's view of every
 * step. Build: cc guide.c $(pkg-config --cflags --libs prorl).
 */
#include <math.h>
#include <prorl.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, prorl_status s) {
    fprintf(stderr, "%s: %s: %s\n", what, prorl_status_name(s), prorl_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s RUN_DIR TARGET_ID ITEM_ID...\n", argv[0]);
        return 2;
    }
    if (prorl_abi_version() != PRORL_ABI_VERSION) {
        fprintf(stderr, "libprorl ABI %d, header %d\n", prorl_abi_version(), PRORL_ABI_VERSION);
        return 1;
    }
    const char *target = argv[2];
    const char *const *history = (const char *const *)(argv + 3);
    size_t n_history = (size_t)(argc - 3);

    prorl_model *model = NULL;
    prorl_status s = prorl_model_load_run(argv[1], NULL, &model);
    if (s != PRORL_OK) return fail("load", s);

    prorl_generate_params params;
    prorl_generate_default_params(&params);
    params.n_paths = 3;

    /* ask how many items the paths need, then fetch them */
    size_t lengths[3], n_paths = 0, needed = 0;
    float scores[3];
    s = prorl_generate(model, history, n_history, target, &params, NULL, 0, lengths, scores, &n_paths, &needed);
    if (s != PRORL_OK && s != PRORL_ERR_BUFFER_TOO_SMALL) {
        prorl_model_free(model);
        return fail("generate", s);
    }
    const char **items = malloc((needed ? needed : 1) * sizeof *items);
    s = prorl_generate(model, history, n_history, target, &params, items, needed, lengths, scores, &n_paths, &needed);
    if (s != PRORL_OK) {
        free(items);
        prorl_model_free(model);
        return fail("generate", s);
    }

    const char *title = NULL;
    prorl_model_item_title(model, target, &title);
    printf("libprorl %s: %zu paths toward \"%s\"\n", prorl_version(), n_paths, title);
    size_t offset = 0;
    for (size_t p = 0; p < n_paths; p++) {
        const char **path = items + offset;
        prorl_step_score steps[64];
        prorl_path_score total;
        s = prorl_score_path(model, history, n_history, target, path, lengths[p], steps, 64, &total);
        if (s != PRORL_OK) {
            free(items);
            prorl_model_free(model);
            return fail("score", s);
        }
        printf("\npath %zu (beam score %.4f): IoI %+.4f  IoR %+.0f  mean CTR %.3f\n", p + 1, scores[p], total.ioi, total.ior,
               total.mean_ctr);
        printf("  step 0  (history)%*s p(target) %.3e  rank %lld\n", 36, "", exp(steps[0].log_p_target),
               (long long)steps[0].rank_target);
        for (size_t i = 0; i < lengths[p]; i++) {
            prorl_model_item_title(model, path[i], &title);
            printf("  step %zu  %-44.44s CTR %.3f  p(target) %.3e  rank %lld\n", i + 1, title, steps[i + 1].ctr,
                   exp(steps[i + 1].log_p_target), (long long)steps[i + 1].rank_target);
        }
        offset += lengths[p];
    }
    free(items);
    prorl_model_free(model);
    return 0;
}
