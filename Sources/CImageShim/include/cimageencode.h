#ifndef CIMAGEENCODE_H
#define CIMAGEENCODE_H

#include <stddef.h>
#include <stdint.h>

/*
 * JPEG encoding of RGB8 pixels through libjpeg.
 *
 * libjpeg reports errors by calling error_exit, whose default calls exit().
 * The encoder here replaces it with a longjmp back into the call, so every
 * failure returns a status and a message instead of ending the process.
 */

/* Status codes returned by cimage_encode_jpeg_rgb8. */
enum {
    CIMAGE_ENCODE_OK = 0,
    CIMAGE_ENCODE_INVALID_ARGUMENT = 1, /* size, quality or pointer out of range */
    CIMAGE_ENCODE_LIBJPEG_ERROR = 2,    /* libjpeg raised an error; see the message */
    CIMAGE_ENCODE_OUT_OF_MEMORY = 3,
};

/*
 * Encodes `pixels` (uint8[height, width, 3], row-major RGB, no row padding)
 * as a baseline JPEG with 4:2:0 chroma subsampling.
 *
 * width and height must be in 1...65500 (the JPEG limit); quality in 1...100.
 * On success *out points to a malloc'ed buffer of *out_size bytes that the
 * caller releases with cimage_free_encoded. On failure *out is NULL and
 * `message` (of `message_size` bytes, may be NULL) contains a NUL-terminated
 * description.
 */
int cimage_encode_jpeg_rgb8(const uint8_t *pixels, int width, int height, int quality,
                            uint8_t **out, size_t *out_size,
                            char *message, size_t message_size);

/* Releases a buffer returned by cimage_encode_jpeg_rgb8. NULL is allowed. */
void cimage_free_encoded(uint8_t *buffer);

#endif
