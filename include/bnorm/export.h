/* SPDX-License-Identifier: Apache-2.0 */
/* BNORM_API marks the symbols libbnorm.so exports. The library is compiled with
 * -fvisibility=hidden, so everything else (Highway kernels, oneTBB task types,
 * internal helpers) stays out of its dynamic symbol table. Plain C so that
 * bnorm.h can include it. */
#ifndef BNORM_EXPORT_H_
#define BNORM_EXPORT_H_

#if defined(__GNUC__) || defined(__clang__)
#define BNORM_API __attribute__((visibility("default")))
#else
#define BNORM_API
#endif

#endif /* BNORM_EXPORT_H_ */
