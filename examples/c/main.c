/* SPDX-License-Identifier: Apache-2.0 */
/* bnorm's C ABI: a Keras layer trains on a small NHWC batch and runs inference;
 * then an engine does the same inference with bnorm_fold + bnorm_normalize. */
#include <stdio.h>
#include <string.h>

#include "bnorm/bnorm.h"

#define CHECK(call) do { if ((call) != BNORM_STATUS_OK) { \
    fprintf(stderr, "%s: %s\n", #call, bnorm_last_error()); return 1; } } while (0)

int main(void) {
  const int64_t shape[4] = {2, 2, 2, 3}; /* N, H, W, C */
  const int axis = -1;
  float x[24], y[24], z[24], mean[3], var[3], scale[3], shift[3];
  bnorm_options options;
  bnorm_layer* layer = NULL;
  int i;
  for (i = 0; i < 24; ++i) x[i] = (float)(i % 7) + 0.5f * (float)(i % 3);

  CHECK(bnorm_options_init(&options));
  options.momentum = 0.5f;
  CHECK(bnorm_layer_create(&options, &layer));
  CHECK(bnorm_layer_forward(layer, x, y, BNORM_DTYPE_F32, shape, 4, 1)); /* training */
  CHECK(bnorm_layer_forward(layer, x, y, BNORM_DTYPE_F32, shape, 4, 0)); /* inference */
  CHECK(bnorm_layer_get_state(layer, BNORM_STATE_MOVING_MEAN, mean, 3));
  CHECK(bnorm_layer_get_state(layer, BNORM_STATE_MOVING_VARIANCE, var, 3));
  bnorm_layer_destroy(layer);

  /* gamma = 1 and beta = 0 here, so they may be left out (NULL). */
  CHECK(bnorm_fold(NULL, NULL, mean, var, 3, options.epsilon, scale, shift));
  CHECK(bnorm_normalize(x, z, BNORM_DTYPE_F32, shape, 4, &axis, 1, mean, scale, shift, 3,
                        BNORM_ACTIVATION_NONE));
  for (i = 0; i < 3; ++i) printf("channel %d: mean %.4f var %.4f y %.5f\n", i, mean[i], var[i], z[i]);
  printf("layer == fold + normalize: %s\n", memcmp(y, z, sizeof y) == 0 ? "yes" : "no");

  /* A bad argument is a status and a message, never a crash. */
  if (bnorm_normalize(x, z, BNORM_DTYPE_F32, shape, 4, &axis, 1, mean, scale, shift, 4,
                      BNORM_ACTIVATION_NONE) != BNORM_STATUS_SHAPE_MISMATCH) return 1;
  printf("expected error: %s\nbnorm %s on %s\n", bnorm_last_error(), bnorm_version(),
         bnorm_active_target());
  return memcmp(y, z, sizeof y) == 0 ? 0 : 1;
}
