#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void cimg_set_error(char *err, size_t errlen, const char *format, ...) {
    if (err == NULL || errlen == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(err, errlen, format, args);
    va_end(args);
}

int cimg_detect_format(const uint8_t *data, size_t size) {
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (data == NULL) return CIMG_FORMAT_UNKNOWN;
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return CIMG_FORMAT_JPEG;
    if (size >= 8 && memcmp(data, png_signature, 8) == 0) return CIMG_FORMAT_PNG;
    return CIMG_FORMAT_UNKNOWN;
}

int cimg_read_info(const uint8_t *data, size_t size, cimg_info *info, char *err, size_t errlen) {
    if (err != NULL && errlen > 0) err[0] = '\0';
    if (data == NULL || info == NULL) {
        cimg_set_error(err, errlen, "null argument");
        return CIMG_ERR_ARGUMENT;
    }
    memset(info, 0, sizeof(*info));
    switch (cimg_detect_format(data, size)) {
    case CIMG_FORMAT_JPEG:
        return cimg_jpeg_read_info(data, size, info, err, errlen);
    case CIMG_FORMAT_PNG:
        return cimg_png_read_info(data, size, info, err, errlen);
    default:
        cimg_set_error(err, errlen, "not a JPEG or PNG file (the first bytes match neither signature)");
        return CIMG_ERR_FORMAT;
    }
}

int cimg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, int jpeg_scale_denom,
                cimg_image *out, char *err, size_t errlen) {
    if (err != NULL && errlen > 0) err[0] = '\0';
    if (data == NULL || out == NULL) {
        cimg_set_error(err, errlen, "null argument");
        return CIMG_ERR_ARGUMENT;
    }
    memset(out, 0, sizeof(*out));
    if (jpeg_scale_denom != 1 && jpeg_scale_denom != 2 && jpeg_scale_denom != 4 && jpeg_scale_denom != 8) {
        cimg_set_error(err, errlen, "JPEG scale denominator must be 1, 2, 4 or 8, found %d", jpeg_scale_denom);
        return CIMG_ERR_ARGUMENT;
    }
    switch (cimg_detect_format(data, size)) {
    case CIMG_FORMAT_JPEG:
        return cimg_jpeg_decode(data, size, max_pixels, jpeg_scale_denom, out, err, errlen);
    case CIMG_FORMAT_PNG:
        return cimg_png_decode(data, size, max_pixels, out, err, errlen);
    default:
        cimg_set_error(err, errlen, "not a JPEG or PNG file (the first bytes match neither signature)");
        return CIMG_ERR_FORMAT;
    }
}

void cimg_free(cimg_image *image) {
    if (image == NULL) return;
    free(image->pixels);
    image->pixels = NULL;
}
