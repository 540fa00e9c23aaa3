/* SPDX-License-Identifier: Apache-2.0 */
/* bnorm's C ABI (C99): Keras' BatchNormalization layer behind an opaque
 * handle, and the low-level calls of engines (moments, fold, normalize,
 * folding into weights; the backward reduce and data passes; a training
 * forward and backward in one call each), a thin layer over the C++ API
 * (bnorm/batch_norm.hpp, kernels.hpp, fold.hpp, backward.hpp, targets.hpp).
 *
 * Every function that can fail returns a bnorm_status. Nothing is thrown
 * across the ABI and nothing crashes on a bad argument: null pointers, ranks
 * outside 1..BNORM_MAX_RANK, negative sizes, element counts that overflow,
 * channel counts that disagree with the shape and partially overlapping input
 * and output are all answered with a status, and bnorm_last_error() then says
 * which argument was wrong, the value given and what was expected. A failed
 * call leaves its outputs and the layer's state as they were.
 *
 * Tensors are dense, C-order (row-major) arrays of `rank` dimensions `shape`.
 * Every pointer argument must be non-null, even for tensors with no elements,
 * except where a comment says it may be null. Tensor data must be aligned to
 * its element size; float16 and bfloat16 travel as raw 16-bit patterns. */
#ifndef BNORM_BNORM_H_
#define BNORM_BNORM_H_

#include <stddef.h>
#include <stdint.h>

#include "bnorm/export.h"

#define BNORM_VERSION_MAJOR 0
#define BNORM_VERSION_MINOR 1
#define BNORM_VERSION_PATCH 0
#define BNORM_VERSION_STRING "0.1.0"

/* The largest tensor rank (and number of feature axes) the C ABI accepts. */
#define BNORM_MAX_RANK 8

/* In C++ every enum of this header has the underlying type int, so that any
 * int a C caller passes is a valid value there (and rejected by a check, not
 * undefined). The size and passing convention are those of the C enum. */
#ifdef __cplusplus
#define BNORM_ENUM_INT : int
#else
#define BNORM_ENUM_INT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version, status and error text ---------------------------------- */

/* The library's version, "MAJOR.MINOR.PATCH" (compare with
 * BNORM_VERSION_STRING to detect a header/library mismatch). */
BNORM_API const char* bnorm_version(void);

typedef enum bnorm_status BNORM_ENUM_INT {
  BNORM_STATUS_OK = 0,
  BNORM_STATUS_NULL_POINTER = 1,      /* a required pointer is null */
  BNORM_STATUS_INVALID_ARGUMENT = 2,  /* a value is out of range or invalid */
  BNORM_STATUS_SHAPE_MISMATCH = 3,    /* sizes disagree with each other or the layer */
  BNORM_STATUS_OVERFLOW = 4,          /* an element or byte count does not fit in size_t */
  BNORM_STATUS_UNSUPPORTED = 5,       /* valid, but not supported (CPU target, axes) */
  BNORM_STATUS_OUT_OF_MEMORY = 6,
  BNORM_STATUS_INTERNAL = 7           /* a bug in bnorm: please report it */
} bnorm_status;

/* A static, human-readable name for a status ("null pointer", ...); "unknown
 * status" for values outside the enum. */
BNORM_API const char* bnorm_status_string(bnorm_status status);

/* The message of this thread's last failed call ("" if none failed yet). It
 * stays valid until the next failing call on the same thread; successful calls
 * do not change it. */
BNORM_API const char* bnorm_last_error(void);

/* ---- Enumerations ------------------------------------------------------ */

typedef enum bnorm_dtype BNORM_ENUM_INT {
  BNORM_DTYPE_F32 = 0,
  BNORM_DTYPE_F16 = 1, /* IEEE half, as uint16_t bit patterns */
  BNORM_DTYPE_BF16 = 2 /* bfloat16, as uint16_t bit patterns */
} bnorm_dtype;

/* Applied after the affine transform of bnorm_normalize: ReLU is max(y, 0),
 * ReLU6 min(max(y, 0), 6). NaN stays NaN. */
typedef enum bnorm_activation BNORM_ENUM_INT {
  BNORM_ACTIVATION_NONE = 0,
  BNORM_ACTIVATION_RELU = 1,
  BNORM_ACTIVATION_RELU6 = 2
} bnorm_activation;

/* Keras' `fused`: None, True, False. */
typedef enum bnorm_fused BNORM_ENUM_INT {
  BNORM_FUSED_AUTO = 0,
  BNORM_FUSED_TRUE = 1,
  BNORM_FUSED_FALSE = 2
} bnorm_fused;

/* The layer's variables (float32, one value per channel). gamma exists only
 * with scale, beta only with center, the last three only with renorm. */
typedef enum bnorm_state BNORM_ENUM_INT {
  BNORM_STATE_GAMMA = 0,
  BNORM_STATE_BETA = 1,
  BNORM_STATE_MOVING_MEAN = 2,
  BNORM_STATE_MOVING_VARIANCE = 3,
  BNORM_STATE_MOVING_STDDEV = 4,
  BNORM_STATE_RENORM_MEAN = 5,
  BNORM_STATE_RENORM_STDDEV = 6
} bnorm_state;

/* The parameter gradients of the layer's last backward call. */
typedef enum bnorm_gradient BNORM_ENUM_INT {
  BNORM_GRADIENT_GAMMA = 0, /* with scale */
  BNORM_GRADIENT_BETA = 1   /* with center */
} bnorm_gradient;

/* Where the output channel sits in a weight tensor. */
typedef enum bnorm_weight_layout BNORM_ENUM_INT {
  BNORM_LAYOUT_OUTPUT_FIRST = 0, /* OIHW convolutions, [out, in] dense (PyTorch, ONNX) */
  BNORM_LAYOUT_OUTPUT_LAST = 1   /* HWIO convolutions, [in, out] dense (Keras, TF) */
} bnorm_weight_layout;

/* ---- The Keras layer ----------------------------------------------------- */

/* Keras' BatchNormalization arguments. Booleans are ints (0 false, else
 * true). Initialize with bnorm_options_init, then change what differs. */
typedef struct bnorm_options {
  int axes[BNORM_MAX_RANK]; /* feature axes; negative counts from the end */
  size_t num_axes;          /* 1..BNORM_MAX_RANK */
  float momentum;
  float epsilon;
  int center;
  int scale;
  float beta_initializer; /* constant initial values of the variables */
  float gamma_initializer;
  float moving_mean_initializer;
  float moving_variance_initializer;
  int renorm;
  int has_rmax; /* renorm_clipping: an absent key means rmax = inf, */
  float rmax;
  int has_rmin; /* rmin = 0, */
  float rmin;
  int has_dmax; /* dmax = inf */
  float dmax;
  float renorm_momentum;
  bnorm_fused fused;
  int trainable;
  int64_t virtual_batch_size; /* 0: no ghost batches */
  int synchronized;           /* Keras' synchronized: statistics over every rank */
  int synchronized_gradients; /* not Keras: dγ, dβ summed over every rank */
} bnorm_options;

/* Keras' defaults: axis -1, momentum 0.99, epsilon 1e-3, center and scale,
 * beta 0, gamma 1, moving mean 0, moving variance 1, no renorm (renorm_momentum
 * 0.99, no clipping), fused AUTO, trainable, no ghost batches, not
 * synchronized. */
BNORM_API bnorm_status bnorm_options_init(bnorm_options* options);

/* A layer: options plus, once built, its variables. One handle must not be
 * used by two threads at once; different handles are independent. */
typedef struct bnorm_layer bnorm_layer;

/* Validates the options (the errors name the Keras argument) and writes a new
 * handle to *layer (unchanged on failure). */
BNORM_API bnorm_status bnorm_layer_create(const bnorm_options* options, bnorm_layer** layer);
/* Frees the handle; null is a no-op. */
BNORM_API void bnorm_layer_destroy(bnorm_layer* layer);

/* Creates the variables for inputs of this shape (Keras' build(); the first
 * forward call does it too). Later calls only check the shape. */
BNORM_API bnorm_status bnorm_layer_build(bnorm_layer* layer, const int64_t* shape, size_t rank);

/* One call of the layer on x (dtype, shape) into y (same dtype and shape; y may
 * equal x, any other overlap is an error). training: -1 unset (Keras' default:
 * inference), 0 inference, 1 training (which updates the moving statistics
 * unless trainable is 0). Statistics and state are float32 for every dtype.
 * Inference on float32 allocates nothing after the first call. */
BNORM_API bnorm_status bnorm_layer_forward(bnorm_layer* layer, const void* x, void* y,
                                           bnorm_dtype dtype, const int64_t* shape, size_t rank,
                                           int training);

/* The number of per-channel values of each variable (after build). */
BNORM_API bnorm_status bnorm_layer_channels(const bnorm_layer* layer, size_t* channels);

/* Copies a variable into / out of `values`; `count` must equal the channel
 * count. Setting refreshes the inference coefficients. */
BNORM_API bnorm_status bnorm_layer_get_state(const bnorm_layer* layer, bnorm_state which,
                                             float* values, size_t count);
BNORM_API bnorm_status bnorm_layer_set_state(bnorm_layer* layer, bnorm_state which,
                                             const float* values, size_t count);

/* The gradients of the layer's most recent bnorm_layer_forward for the loss
 * gradient dy: writes dx and keeps the parameter gradients for
 * bnorm_layer_get_gradient. x is the forward's input; x, dy and dx have the
 * last forward's shape and the type `dtype`; dx may equal dy or x, any other
 * overlap is an error. After a training
 * forward this is Keras' training gradient (renorm's r and d and the moving
 * statistics are constants), after an inference forward the gradient of its
 * affine map. INVALID_ARGUMENT when the layer has run no forward yet,
 * SHAPE_MISMATCH for another shape. */
BNORM_API bnorm_status bnorm_layer_backward(bnorm_layer* layer, const void* x, const void* dy,
                                            void* dx, bnorm_dtype dtype, const int64_t* shape,
                                            size_t rank);

/* In-place training: the same gradients from the forward's output y instead
 * of x (the forward may have written y over x), recovering x - mean as
 * (y - shift) / scale with the forward's own coefficients. INVALID_ARGUMENT
 * when a scale coefficient is 0 (gamma = 0): y holds nothing of x there. */
BNORM_API bnorm_status bnorm_layer_backward_from_output(bnorm_layer* layer, const void* y,
                                                        const void* dy, void* dx,
                                                        bnorm_dtype dtype, const int64_t* shape,
                                                        size_t rank);

/* Copies a parameter gradient of the last bnorm_layer_backward into `values`
 * (`count` = the channel count). INVALID_ARGUMENT when it is not defined: no
 * backward yet, or dγ with scale=0, dβ with center=0. */
BNORM_API bnorm_status bnorm_layer_get_gradient(const bnorm_layer* layer, bnorm_gradient which,
                                                float* values, size_t count);

/* ---- Synchronized batch norm (docs/semantics.md, "Synchronized") -------- */

/* The ranks of a data-parallel job, as callbacks, so that any transport
 * plugs in (MPI, gloo, NCCL's host path, a framework's process group).
 * rank(user) is 0..size(user)-1 and size(user) >= 1; both are read once, by
 * bnorm_layer_set_communicator. all_gather is a collective: every rank passes
 * `bytes` bytes in `send`, and `receive` (size * bytes) gets rank r's bytes at
 * r * bytes. It returns BNORM_STATUS_OK, or another status after writing a
 * NUL-terminated reason into message[0..message_size); the layer call then
 * fails with that status (1..5; others become INVALID_ARGUMENT) and the
 * reason. destroy (may be null) is called once the layer no longer uses the
 * communicator (replaced, removed or the layer destroyed). */
typedef struct bnorm_communicator {
  void* user;
  int (*rank)(void* user);
  int (*size)(void* user);
  bnorm_status (*all_gather)(void* user, const void* send, size_t bytes, void* receive,
                             char* message, size_t message_size);
  void (*destroy)(void* user);
} bnorm_communicator;

/* The ranks a synchronized layer spans (options.synchronized must be set):
 * every rank's training forwards and their backwards are then collective
 * calls, and a local error or a disagreement between ranks fails every rank's
 * call with the same status and message. The callbacks are copied; null
 * removes the communicator (the layer is then its own single rank). On
 * failure the layer keeps its communicator and destroy is not called. */
BNORM_API bnorm_status bnorm_layer_set_communicator(bnorm_layer* layer,
                                                    const bnorm_communicator* communicator);

/* ---- Low-level calls for inference engines ------------------------------ */

/* The feature axes (axes[0..num_axes), negative from the end) must be adjacent;
 * their sizes multiply into the channel count, which `channels` must equal.
 * Per-channel arrays hold `channels` values. */

/* Per-channel batch mean and biased (population) variance of x, in double,
 * exact to about 1e-7 relative even when |mean| >> std. Needs at least one
 * value per channel. */
BNORM_API bnorm_status bnorm_moments(const void* x, bnorm_dtype dtype, const int64_t* shape,
                                     size_t rank, const int* axes, size_t num_axes, double* mean,
                                     double* variance, size_t channels);

/* The coefficients of a frozen batch norm, in double:
 * scale = gamma / sqrt(moving_variance + epsilon), shift = beta, so that
 * y = (x - moving_mean) * scale + shift. gamma and beta may be null (scale=False
 * / center=False). epsilon must be finite and > 0, variances >= 0. */
BNORM_API bnorm_status bnorm_fold(const float* gamma, const float* beta, const float* moving_mean,
                                  const float* moving_variance, size_t channels, float epsilon,
                                  float* scale, float* shift);

/* y = activation((x - mean) * scale + shift) per channel, the inference pass
 * (with bnorm_fold's outputs and the moving mean). y may equal x. Allocates
 * nothing. */
BNORM_API bnorm_status bnorm_normalize(const void* x, void* y, bnorm_dtype dtype,
                                       const int64_t* shape, size_t rank, const int* axes,
                                       size_t num_axes, const float* mean, const float* scale,
                                       const float* shift, size_t channels,
                                       bnorm_activation activation);

/* bnorm_normalize with a residual: y = activation((x - mean) * scale + shift + residual),
 * residual a tensor of x's dtype and shape added before the activation, in float32
 * math (a network's "batch norm, add, ReLU" as one pass over memory). residual may
 * equal y (y += ...) or x; any other overlap with y is an error. Allocates nothing. */
BNORM_API bnorm_status bnorm_normalize_add(const void* x, const void* residual, void* y,
                                           bnorm_dtype dtype, const int64_t* shape, size_t rank,
                                           const int* axes, size_t num_axes, const float* mean,
                                           const float* scale, const float* shift,
                                           size_t channels, bnorm_activation activation);

/* Folds a frozen batch norm into the convolution or dense layer that feeds it,
 * in double: afterwards conv'(x) == bn(conv(x)) up to rounding. weights has
 * weight_shape (rank 2..BNORM_MAX_RANK) with its output channels (= channels)
 * first or last; bias (channels values, zeros if the layer had none) is
 * rewritten. gamma and beta may be null. */
BNORM_API bnorm_status bnorm_fold_into_weights(float* weights, const int64_t* weight_shape,
                                               size_t rank, bnorm_weight_layout layout,
                                               float* bias, const float* gamma, const float* beta,
                                               const float* moving_mean,
                                               const float* moving_variance, size_t channels,
                                               float epsilon);

/* ---- Low-level calls for training engines ------------------------------- */

/* The backward pass as two calls over the axes rule above (docs/semantics.md,
 * "Backward (gradients)"). The forward's batch mean per channel comes split
 * in two floats, mean_hi + mean_lo (hi = (float)mean, lo = (float)(mean - hi)),
 * so that x - mean stays exact when |mean| >> std. g is dy, or with a fused
 * activation dy where its derivative is not 0, read from the forward's output
 * y (y <= 0 is 0 for both, y >= 6 too for RELU6); y has x's dtype and shape
 * and may be null with BNORM_ACTIVATION_NONE. */

/* sum_dy[c] = Σg and sum_dy_xmu[c] = Σg·(x - mean) per channel, in double
 * (0 with no values per channel), bitwise the same for any thread count.
 * Allocates nothing unless the per-block partial sums exceed 16 KiB (tensors
 * beyond the caches). */
BNORM_API bnorm_status bnorm_backward_reduce(const void* x, const void* dy, const void* y,
                                             bnorm_dtype dtype, const int64_t* shape, size_t rank,
                                             const int* axes, size_t num_axes,
                                             const float* mean_hi, const float* mean_lo,
                                             double* sum_dy, double* sum_dy_xmu, size_t channels,
                                             bnorm_activation activation);

/* dx = k·(g - a - (x - mean)·b) per channel, in float32 math: with
 * k = γ·ρ, a = sum_dy/n, b = ρ²·sum_dy_xmu/n (n the values per channel,
 * ρ = 1/sqrt(variance + epsilon)) the training gradient. dx may equal dy, x
 * or y; any other overlap is an error. Allocates nothing. */
BNORM_API bnorm_status bnorm_backward_data(const void* x, const void* dy, const void* y, void* dx,
                                           bnorm_dtype dtype, const int64_t* shape, size_t rank,
                                           const int* axes, size_t num_axes, const float* mean_hi,
                                           const float* mean_lo, const float* k, const float* a,
                                           const float* b, size_t channels,
                                           bnorm_activation activation);

/* A training step's forward and backward, each as one call over the axes rule
 * above (no fused activation, renorm or ghost batches: those are the layer's).
 * Both need at least one value per channel and one channel; epsilon is finite
 * and > 0, in double as the C++ calls take it. Channels-first tensors too
 * large to stay cached whose channel (the backward: a channel of x and of dy)
 * fits in what a core has cached are done channel by channel, so each input
 * is read from memory once. Neither allocates on tensors the caches hold with
 * up to 1024 channels: their per-channel float coefficients (4 arrays of
 * `channels` floats for the forward, 3 for the backward) and per-block partial
 * sums (two doubles per channel and block) live on the stack up to 16 KiB
 * each, and on the heap beyond: tensors beyond the caches, or over 1024
 * channels. */

/* The batch mean and biased variance of x per channel (bitwise bnorm_moments'),
 * then y = (x - mean) * scale + shift in float32 math as bnorm_normalize's, with
 * scale = gamma / sqrt(variance + epsilon) computed in double and rounded to
 * float, shift = beta, and the mean split into mean_hi + mean_lo as above.
 * gamma and beta may be null (1 and 0). y may equal x; any other overlap is an
 * error. x is read from memory once on the channel-by-channel path, twice
 * otherwise. */
BNORM_API bnorm_status bnorm_training_normalize(const void* x, void* y, bnorm_dtype dtype,
                                                const int64_t* shape, size_t rank,
                                                const int* axes, size_t num_axes,
                                                const float* gamma, const float* beta,
                                                double epsilon, double* mean, double* variance,
                                                size_t channels);

/* The backward of bnorm_training_normalize for the loss gradient dy: with
 * ρ = 1/sqrt(variance + epsilon) and n the values per channel, sum_dy = Σdy and
 * sum_dy_xmu = Σdy·(x - mean) (bitwise bnorm_backward_reduce's), then
 * dx = γ·ρ·(dy - sum_dy/n - (x - mean)·ρ²·sum_dy_xmu/n) (bitwise
 * bnorm_backward_data's with k, a, b computed in double and rounded to float).
 * The parameter gradients follow from the sums: dγ = ρ·sum_dy_xmu, dβ = sum_dy.
 * mean_hi/mean_lo is the forward's batch mean split as above, variance its
 * biased batch variance (every value >= 0); gamma may be null (1). dx may equal
 * dy or x; any other overlap is an error. x and dy are read from memory once on
 * the channel-by-channel path, twice otherwise. */
BNORM_API bnorm_status bnorm_training_backward(const void* x, const void* dy, void* dx,
                                               bnorm_dtype dtype, const int64_t* shape,
                                               size_t rank, const int* axes, size_t num_axes,
                                               const float* mean_hi, const float* mean_lo,
                                               const double* variance, const float* gamma,
                                               double epsilon, double* sum_dy,
                                               double* sum_dy_xmu, size_t channels);

/* ---- SIMD targets ------------------------------------------------------- */

/* The SIMD targets this CPU supports, best first, by lower-case name ("avx3",
 * "avx2", "sse4", ..., "scalar"); bnorm_target_name returns null past the end.
 * The names are static strings. */
BNORM_API size_t bnorm_target_count(void);
BNORM_API const char* bnorm_target_name(size_t index);
/* Pins every kernel to one target (case-insensitive): INVALID_ARGUMENT for an
 * unknown name, UNSUPPORTED for one this CPU cannot run. The environment
 * variable BNORM_TARGET does the same at the first kernel call. Not
 * thread-safe: call it before starting parallel work. */
BNORM_API bnorm_status bnorm_force_target(const char* name);
/* Back to the best supported target. Same threading rule. */
BNORM_API bnorm_status bnorm_reset_target(void);
/* The target the kernels dispatch to now (a static string). */
BNORM_API const char* bnorm_active_target(void);

/* ---- Threads ------------------------------------------------------------ */

/* How every later bnorm call uses threads: 0 (the default) all cores through
 * oneTBB's global arena, 1 serial on the calling thread, n > 1 a library-owned
 * oneTBB arena of n threads, created by this call. Results are bitwise equal
 * for every choice. Not thread-safe: set it before starting parallel work, and
 * never while another thread is inside a bnorm call or in this function. */
BNORM_API bnorm_status bnorm_set_max_threads(int n);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BNORM_BNORM_H_ */
