#ifndef CIMAGESHIM_INTERNAL_H
#define CIMAGESHIM_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "cimageshim.h"

/* Writes a formatted message into err (NUL-terminated, truncated to errlen). */
void cimg_set_error(char *err, size_t errlen, const char *format, ...);

int cimg_jpeg_read_info(const uint8_t *data, size_t size, cimg_info *info, char *err, size_t errlen);
int cimg_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, int scale_denom,
                     cimg_image *out, char *err, size_t errlen);

int cimg_png_read_info(const uint8_t *data, size_t size, cimg_info *info, char *err, size_t errlen);
int cimg_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels, cimg_image *out,
                    char *err, size_t errlen);

#endif
